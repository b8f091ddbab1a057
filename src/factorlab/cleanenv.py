"""Build a virtual environment from a requirements file alone, cached by the file's content."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .process import cache_root

INSTALL_TIMEOUT = 240
NETWORK_TROUBLE = ("NewConnectionError", "Temporary failure in name resolution", "Network is unreachable",
                   "ConnectTimeoutError", "ProxyError", "SSLError", "Connection refused")


class ManifestError(Exception):
    """pip could not install what the manifest declares (the learner's problem)."""


class InstallTrouble(Exception):
    """pip could not reach a package index, or ran out of time (the machine's problem)."""


def cache_dir() -> Path:
    return cache_root() / "venvs"


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def build(requirements: Path) -> Path:
    """Return a venv that holds exactly what requirements declares (built once per content)."""
    content = requirements.read_bytes()
    key = hashlib.sha256(content + sys.version.encode()).hexdigest()[:16]
    target = cache_dir() / key
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=target.parent))
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(staging)], check=True, capture_output=True, timeout=120)
        manifest = staging / "requirements.txt"
        manifest.write_bytes(content)
        cmd = [str(python_of(staging)), "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q",
               "-r", str(manifest)]
        if os.environ.get("FACTORLAB_WHEELHOUSE"):
            cmd += ["--no-index", "--find-links", os.environ["FACTORLAB_WHEELHOUSE"]]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise InstallTrouble(f"pip did not finish installing requirements.txt within {INSTALL_TIMEOUT} s") from None
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()
            last = "\n  ".join(line for line in said[-4:])
            if any(word in done.stderr for word in NETWORK_TROUBLE):
                raise InstallTrouble(f"pip could not reach a package index:\n  {last}")
            raise ManifestError(f"pip could not install requirements.txt:\n  {last}")
        (staging / ".complete").touch()
        try:
            staging.rename(target)
        except OSError:  # another build finished first: use it
            pass
        return target
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
