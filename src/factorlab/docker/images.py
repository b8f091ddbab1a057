"""Images of a learner's app, built with the course's Dockerfile beside this module.

Two steps: a dependency image, named by a hash of what goes into it (the Dockerfile's first stage, the
manifest, the launcher, the base image and any wheelhouse) and kept as the build cache; then an image of
the app's code on top of it, made once per content and removed when the session closes. Editing the code
therefore never reinstalls dependencies.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import threading
import time
import uuid
from pathlib import Path

import requests

from .. import files, manifest
from ..runners import LAUNCHER, AppFailed, RunnerUnavailable
from .engine import LABEL, base_image, owner

HERE = Path(__file__).parent
TEMPLATE = HERE / "Dockerfile"
LEGACY_MANIFEST = HERE / "legacy-requirements.txt"
BUILD_TIMEOUT = 300
APP_IMAGE = "factorlab/app"
DEPS_IMAGE = "factorlab/deps"


class BuildFailed(Exception):
    """docker build stopped; step is the instruction that failed, log what it printed."""

    def __init__(self, message: str, step: str, log: list[str]):
        super().__init__(message)
        self.step, self.log = step, log


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def _add_tree(tar: tarfile.TarFile, root: Path, prefix: str) -> None:
    """Add root's files under prefix, leaving out what a copy of the app leaves out, with stable metadata."""
    def walk(folder: Path, rel: str):
        for name in sorted(os.listdir(folder)):
            path, arc = folder / name, f"{rel}/{name}"
            if files.skipped(name, path.is_dir() and not path.is_symlink()):
                continue
            info = tar.gettarinfo(str(path), arc)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if info.isdir():
                tar.addfile(info)
                walk(path, arc)
            elif info.isfile():
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
            elif info.issym():
                tar.addfile(info)
    info = tarfile.TarInfo(prefix)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
    tar.addfile(info)
    walk(root, prefix)


def _tar(build) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        build(tar)
    return buf.getvalue()


def wheelhouse() -> list[Path]:
    """The wheels of $FACTORLAB_WHEELHOUSE (builds then install from them alone), or none."""
    folder = os.environ.get("FACTORLAB_WHEELHOUSE")
    if not folder:
        return []
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise RunnerUnavailable(f"FACTORLAB_WHEELHOUSE names {folder}, which is not a folder")
    return sorted(p for p in path.iterdir() if p.suffix == ".whl" or p.name.endswith(".tar.gz"))


def manifest_files(folder: Path) -> dict[str, bytes]:
    """The folder's requirements.txt and the files it includes (path → bytes); before factor II, when there is
    no requirements.txt, what the legacy server had installed by hand."""
    try:
        return manifest.read(folder).files
    except manifest.ManifestMissing:
        return {manifest.MANIFEST: LEGACY_MANIFEST.read_bytes()}


class Images:
    """The images one session builds: each content once, failures remembered, app images removed at the end."""

    def __init__(self, client, run_prefix: str = "", keep: bool = False):
        self.client = client
        self.run_prefix = run_prefix
        self.keep = keep
        self.kept: list[str] = []
        self._built: dict[str, str | BaseException] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def _key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    def _remembered(self, key: str) -> str | None:
        known = self._built.get(key)
        if isinstance(known, BaseException):
            raise known
        return known

    def app(self, folder: Path) -> str:
        """The tag of an image of folder's app, built once per content for this session."""
        deps = self.deps(manifest_files(folder))
        app_dockerfile = f"FROM {deps}\n" + TEMPLATE.read_text().split("\nFROM deps\n", 1)[1]
        context = _tar(lambda tar: (_add_tree(tar, folder, "app"),
                                    _add_bytes(tar, "Dockerfile", app_dockerfile.encode())))
        key = hashlib.sha256(context).hexdigest()[:16]
        with self._key_lock(key):
            if known := self._remembered(key):
                return known
            tag = f"{APP_IMAGE}:{key}-{uuid.uuid4().hex[:6]}"
            try:
                self._build(context, "Dockerfile", tag, {"role": "app"})
            except BuildFailed as exc:
                self._built[key] = AppFailed(f"Seen: the image of the app did not build ({exc}).")
                raise self._built[key] from None
            self._built[key] = tag
            return tag

    def deps(self, declared: dict[str, bytes]) -> str:
        """The dependency image for these manifest files (kept between runs as the build cache)."""
        template = TEMPLATE.read_text().split("\nFROM deps\n", 1)[0]
        wheels = wheelhouse()
        base = base_image()
        try:
            base_id = self.client.images.get(base).id
        except Exception:
            base_id = base
        parts = [f"{name}\0{len(data)}\0".encode() + data for name, data in sorted(declared.items())]
        key = hashlib.sha256(b"\0".join([template.encode(), *parts, LAUNCHER.read_bytes(), base_id.encode(),
                                         *(f"{w.name}:{w.stat().st_size}".encode() for w in wheels)])).hexdigest()[:16]
        tag = f"{DEPS_IMAGE}:{key}"
        with self._key_lock(tag):
            if self._remembered(tag) or self._exists(tag):
                self._built[tag] = tag
                return tag

            def fill(tar):
                _add_bytes(tar, ".factorlab/Dockerfile", template.encode())
                for name, data in declared.items():
                    _add_bytes(tar, f".factorlab/manifest/{name}", data)
                _add_bytes(tar, ".factorlab/launch.py", LAUNCHER.read_bytes())
                _add_bytes(tar, ".factorlab/wheels/README", b"wheels for offline installs, when a wheelhouse is given\n")
                for wheel in wheels:
                    _add_bytes(tar, f".factorlab/wheels/{wheel.name}", wheel.read_bytes())

            args = {"BASE_IMAGE": base}
            if wheels:
                args.update(PIP_NO_INDEX="1", PIP_FIND_LINKS="/wheels")
            try:
                self._build(_tar(fill), ".factorlab/Dockerfile", tag, {"role": "deps"}, args, offline=bool(wheels))
            except BuildFailed as exc:
                self._built[tag] = _deps_failure(exc, base)
                raise self._built[tag] from None
            self._built[tag] = tag
            return tag

    def _exists(self, tag: str) -> bool:
        import docker.errors

        try:
            self.client.images.get(tag)
            return True
        except docker.errors.ImageNotFound:
            return False

    def _build(self, context: bytes, dockerfile: str, tag: str, labels: dict[str, str],
               args: dict[str, str] | None = None, offline: bool = False) -> None:
        import docker.errors

        labels = {f"{LABEL}.{k}": v for k, v in labels.items()}
        labels.update({f"{LABEL}.owner": owner(), f"{LABEL}.prefix": self.run_prefix})
        step, log = "", []
        deadline = time.monotonic() + BUILD_TIMEOUT
        try:
            stream = self.client.api.build(
                fileobj=io.BytesIO(context), custom_context=True, dockerfile=dockerfile, tag=tag, labels=labels,
                buildargs=args or {}, rm=True, forcerm=True, pull=False, decode=True,
                network_mode="none" if offline else None, container_limits={"memory": 1024 ** 3},
                timeout=BUILD_TIMEOUT)
            for chunk in stream:  # read to the end: the last chunk says whether it worked
                for line in chunk.get("stream", "").splitlines():
                    if line.startswith("Step "):
                        step = line.split(" : ", 1)[-1]
                    log.append(line)
                if "error" in chunk:
                    raise BuildFailed(chunk["error"].strip(), step, log)
                if time.monotonic() > deadline:
                    raise BuildFailed(f"the build took longer than {BUILD_TIMEOUT} s", step, log)
        except docker.errors.APIError as exc:
            raise BuildFailed(str(exc.explanation or exc), step, log) from None
        except requests.RequestException as exc:
            raise RunnerUnavailable(f"the Docker engine stopped answering during a build ({type(exc).__name__})") \
                from None

    def close(self) -> None:
        """Remove the app images this session built (or list them as kept)."""
        for key, image in list(self._built.items()):
            if isinstance(image, str) and image.startswith(APP_IMAGE + ":"):
                if self.keep:
                    self.kept.append(image)
                else:
                    try:
                        self.client.images.remove(image, force=True)
                    except Exception:
                        pass
            self._built.pop(key, None)


def _deps_failure(exc: BuildFailed, base: str) -> BaseException:
    """A failed dependency build: the learner's manifest (AppFailed) or the machine (RunnerUnavailable)."""
    if "pip install" in exc.step:
        said = [line for line in exc.log if line.strip() and not line.startswith(("Step ", " ---> "))
                and not line.startswith(("INFO:", "Removing intermediate"))]
        errors = [line for line in said if line.startswith("ERROR")] or said[-4:]
        return AppFailed("Seen: the image did not build: pip could not install requirements.txt:\n  "
                         + "\n  ".join(errors[-4:]) + "\nExpected: every requirement installable.")
    if exc.step.startswith("FROM"):
        return RunnerUnavailable(
            f"the base image {base} is not available here and could not be pulled ({exc}); "
            "set FACTORLAB_BASE_IMAGE to a local Python 3.11 image (see the README)")
    return RunnerUnavailable(f"the dependency image did not build at `{exc.step}`: {exc}")
