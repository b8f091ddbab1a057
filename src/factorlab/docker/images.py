"""Images of a learner's app, built with the course's Dockerfile beside this module.

Two steps: a dependency image, named by a hash of what goes into it (the Dockerfile's first stage, the
manifest, the launcher, the base image and any wheelhouse) and kept as the build cache; then an image of
the app's code on top of it, made once per content and removed when the session closes. Editing the code
therefore never reinstalls dependencies.

The app's stage is the Dockerfile's second one, applied without the builder where it can be: its COPY of the
app's files goes into a container of the dependency image (put_archive, owned as --chown says), and the
instructions that only set the image's config (WORKDIR, USER, ENV, CMD, …) go to the commit. The image is the
same; it takes a fifth of the time of a build, which steps through an intermediate image per instruction, and
a check that changes the code makes one for every change. A stage with any other instruction is built.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass
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


def _add_tree(tar: tarfile.TarFile, root: Path, prefix: str, owner_ids: tuple[int, int] = (0, 0)) -> None:
    """Add root's files under prefix, leaving out what a copy of the app leaves out, with stable metadata
    (owned by owner_ids: uid, gid)."""
    uid, gid = owner_ids

    def walk(folder: Path, rel: str):
        for name in sorted(os.listdir(folder)):
            path, arc = folder / name, f"{rel}/{name}"
            if files.skipped(name, path.is_dir() and not path.is_symlink()):
                continue
            info = tar.gettarinfo(str(path), arc)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, uid, gid, "", ""
            if info.isdir():
                tar.addfile(info)
                walk(path, arc)
            elif info.isfile():
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
            elif info.issym():
                tar.addfile(info)
    info = tarfile.TarInfo(prefix)
    info.type, info.mode, info.mtime, info.uid, info.gid = tarfile.DIRTYPE, 0o755, 0, uid, gid
    tar.addfile(info)
    walk(root, prefix)


# The instructions a commit applies to an image's config (docker commit --change).
CONFIG_INSTRUCTIONS = {"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "USER", "VOLUME", "WORKDIR"}
COPY_APP = re.compile(r"COPY\s+--chown=(\d+):(\d+)\s+app/?\s+(/[\w./-]*)")


@dataclass(frozen=True)
class CommitPlan:
    """The app's stage as a commit: where its COPY puts the app (owned by chown), and the config changes."""

    copy_to: str
    chown: tuple[int, int]
    changes: list[str]


def commit_plan(stage: str) -> CommitPlan | None:
    """The Dockerfile's app stage as a CommitPlan, or None when it holds anything but one `COPY --chown=U:G
    app/ DEST` and config instructions (a RUN, a COPY of something else, a WORKDIR before the COPY): then it
    is built."""
    instructions, pending = [], ""
    for line in stage.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        instructions.append(pending.strip())
        pending = ""
    copies = [COPY_APP.fullmatch(i) for i in instructions if i.split()[0].upper() == "COPY"]
    others = [i for i in instructions if i.split()[0].upper() != "COPY"]
    if len(copies) != 1 or copies[0] is None or instructions[0].split()[0].upper() != "COPY" \
            or any(i.split()[0].upper() not in CONFIG_INSTRUCTIONS for i in others):
        return None
    found = copies[0]
    return CommitPlan(found[3], (int(found[1]), int(found[2])), others)


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
        """The tag of an image of folder's app, made once per content for this session."""
        deps = self.deps(manifest_files(folder))
        stage = TEMPLATE.read_text().split("\nFROM deps\n", 1)[1]
        app_dockerfile = f"FROM {deps}\n" + stage
        context = _tar(lambda tar: (_add_tree(tar, folder, "app"),
                                    _add_bytes(tar, "Dockerfile", app_dockerfile.encode())))
        key = hashlib.sha256(context).hexdigest()[:16]
        with self._key_lock(key):
            if known := self._remembered(key):
                return known
            tag = f"{APP_IMAGE}:{key}-{uuid.uuid4().hex[:6]}"
            plan = commit_plan(stage)
            try:
                if plan is None:
                    self._build(context, "Dockerfile", tag, {"role": "app"})
                else:
                    self._commit(deps, folder, plan, tag, {"role": "app"})
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

    def _commit(self, base: str, folder: Path, plan: "CommitPlan", tag: str, labels: dict[str, str]) -> None:
        """The app's stage as a commit: folder's files put into a container of base, the config instructions
        applied by the commit (see the module's docstring)."""
        import docker.errors

        labels = {f"{LABEL}.{k}": v for k, v in labels.items()}
        labels.update({f"{LABEL}.owner": owner(), f"{LABEL}.prefix": self.run_prefix})
        archive = _tar(lambda tar: _add_tree(tar, folder, plan.copy_to.strip("/"), owner_ids=plan.chown))
        container = None
        try:
            container = self.client.containers.create(base, ["true"], network_mode="none", labels=labels)
            if not container.put_archive("/", archive):
                raise BuildFailed("the app's files could not be copied into the image", "COPY", [])
            repository, _, name = tag.rpartition(":")
            changes = [*plan.changes, *(f"LABEL {key}={json.dumps(value)}" for key, value in labels.items())]
            container.commit(repository=repository, tag=name, changes=changes)
        except docker.errors.APIError as exc:
            raise BuildFailed(str(exc.explanation or exc), "COPY", []) from None
        except requests.RequestException as exc:
            raise RunnerUnavailable(f"the Docker engine stopped answering while it made the app's image "
                                    f"({type(exc).__name__})") from None
        finally:
            if container is not None:
                try:
                    container.remove(force=True)
                except Exception:
                    pass  # the engine's sweep of this run's leftovers takes it

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
