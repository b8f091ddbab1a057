"""Build a virtual environment from an app's requirements.txt alone (and the files it includes), cached by
their content."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import manifest
from .process import cache_root

INSTALL_TIMEOUT = 240
LAYOUT = 2  # part of the cache key: venvs of an older layout (1: console scripts pointing at the staging folder)
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


def moved_scripts(staging: Path, target: Path) -> None:
    """Point the console scripts pip wrote (gunicorn, flask, …) at the venv's Python once it is moved from staging
    to target: their first line names the interpreter by its full path, and a venv does not move by itself."""
    old, new = f"#!{staging}/bin/".encode(), f"#!{target}/bin/".encode()
    for script in (staging / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            data = script.read_bytes()
            if data.startswith(old):
                script.write_bytes(new + data[len(old):])


def build(folder: Path) -> Path:
    """Return a venv that holds exactly what folder's requirements.txt declares (built once per content)."""
    try:
        declared = manifest.read(folder)
    except manifest.ManifestMissing:
        raise ManifestError(f"there is no {manifest.MANIFEST}") from None
    if declared.problems:
        raise ManifestError(f"pip could not read {manifest.MANIFEST}: " + "; ".join(declared.problems[:3]))
    digest = hashlib.sha256(f"{LAYOUT}\0{sys.version}".encode())
    for name, data in sorted(declared.files.items()):
        digest.update(f"\0{name}\0{len(data)}\0".encode() + data)
    key = digest.hexdigest()[:16]
    target = cache_dir() / key
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=target.parent))
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(staging)], check=True, capture_output=True, timeout=120)
        for name, data in declared.files.items():  # the manifest and what it includes, at the same relative paths
            (staging / "manifest" / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / "manifest" / name).write_bytes(data)
        cmd = [str(python_of(staging)), "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q",
               "-r", str(staging / "manifest" / manifest.MANIFEST)]
        if os.environ.get("FACTORLAB_WHEELHOUSE"):
            cmd += ["--no-index", "--find-links", os.environ["FACTORLAB_WHEELHOUSE"]]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
                                  cwd=staging / "manifest")
        except subprocess.TimeoutExpired:
            raise InstallTrouble(f"pip did not finish installing requirements.txt within {INSTALL_TIMEOUT} s") from None
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()
            last = "\n  ".join(line for line in said[-4:])
            if any(word in done.stderr for word in NETWORK_TROUBLE):
                raise InstallTrouble(f"pip could not reach a package index:\n  {last}")
            raise ManifestError(f"pip could not install requirements.txt:\n  {last}")
        moved_scripts(staging, target)
        (staging / ".complete").touch()
        try:
            staging.rename(target)
        except OSError:  # another build finished first: use it
            pass
        return target
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
