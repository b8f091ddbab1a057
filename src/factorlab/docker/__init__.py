"""The docker runner: the learner's folder built into an image and checked in locked-down containers.

    engine.py    finding the engine; sweeping up after a factorlab process that died
    images.py    the dependency and app images, built with the Dockerfile beside this module
    runner.py    DockerSession (one per check run) and DockerRunner (one per check)

The checks reach it through the calls of `factorlab.runners.Runner`, as they reach the local runner.
"""

from .engine import ENGINE_MISSING, connect, engine_available, leftovers
from .images import LEGACY_MANIFEST
from .runner import DockerRunner, DockerSession

__all__ = ["ENGINE_MISSING", "LEGACY_MANIFEST", "DockerRunner", "DockerSession", "connect", "engine_available",
           "leftovers"]
