"""Build, release and run Shortly: three separate stages, one command each.

    python release.py build                        copy the code into builds/<id>: same code, same id
    python release.py release BUILD --config FILE  a build plus a config: a new, numbered, read-only release
    python release.py list                         the releases, oldest first
    python release.py verify [ID]                  is the release (default: current) still as it was made?
    python release.py rollback                     make the release before the current one current again
    python release.py run [ID] [--process TYPE]    run one process of a release (default: current) in the
                                                   foreground: its Procfile's TYPE line (default: web, on $PORT)

Everything lives under one deploy root: --root DIR, else $SHORTLY_DEPLOY_ROOT, else ../shortly-deploy
next to this folder.

    builds/<id>/     the app's files, one folder per distinct codebase
    releases/vN/     a build's files, its release.env and a MANIFEST of checksums; read-only
    current          a symlink to the release that runs
    var/             the working directory of the running app: SQLite file, log file

Standard library only: this tool has to work on a box where nothing is installed yet.
"""
import argparse
import hashlib
import os
import re
import shlex
import shutil
import stat
import sys
from fnmatch import fnmatch
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent
NEVER_BUILT = {".git", ".env", ".venv", "venv", "__pycache__"}  # local config and tool folders
RELEASE_ID = re.compile(r"v(\d+)")
RELEASE_ENV = "release.env"
MANIFEST = "MANIFEST"


def fail(message):
    raise SystemExit(f"release.py: {message}")


def deploy_root(args):
    return Path(args.root or os.environ.get("SHORTLY_DEPLOY_ROOT") or APP_DIR.parent / "shortly-deploy").resolve()


def read_config(path):
    """The KEY=value lines of a config file, in order (comments and blank lines left out)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.removeprefix("export ").partition("=")
            values[key.strip()] = value.strip()
    return values


def unquote(value):
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"" else value


# -- build --------------------------------------------------------------------------------------------------

def codebase_files(root):
    """The app's files as git would track them: what .gitignore lists, .env and tool folders left out."""
    ignored = set(NEVER_BUILT)
    gitignore = APP_DIR / ".gitignore"
    if gitignore.is_file():
        ignored |= {line.strip().rstrip("/") for line in gitignore.read_text().splitlines()
                    if line.strip() and not line.startswith("#")}

    def skipped(path):
        return any(fnmatch(path.name, pattern) for pattern in ignored) or path.resolve() == root

    files = []
    for folder, dirs, names in os.walk(APP_DIR):
        here = Path(folder)
        dirs[:] = [d for d in dirs if not skipped(here / d)]
        files += [(here / n).relative_to(APP_DIR).as_posix() for n in names
                  if not skipped(here / n) and (here / n).is_file() and not (here / n).is_symlink()]
    return sorted(files)


def content_id(files):
    """b + 12 hex digits of a sha256 over every file's name and bytes: the same code gives the same id."""
    digest = hashlib.sha256()
    for name in files:
        data = (APP_DIR / name).read_bytes()
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return "b" + digest.hexdigest()[:12]


def build(args):
    root = deploy_root(args)
    files = codebase_files(root)
    if "shortly.py" not in files:
        fail(f"no shortly.py in {APP_DIR}: run release.py from the app's folder")
    build_id = content_id(files)
    folder = root / "builds" / build_id
    if folder.is_dir():
        print(f"build {build_id} exists already: the code has not changed since")
    else:
        temporary = root / "builds" / f".{build_id}.{os.getpid()}"
        for name in files:
            (temporary / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(APP_DIR / name, temporary / name)
        temporary.rename(folder)  # a build appears complete, or not at all
        print(f"built {build_id}: {len(files)} files")
    print(build_id)


# -- release ------------------------------------------------------------------------------------------------

def release_ids(root):
    """The ids of the releases, oldest first."""
    folder = root / "releases"
    found = [p.name for p in folder.iterdir() if RELEASE_ID.fullmatch(p.name)] if folder.is_dir() else []
    return sorted(found, key=lambda name: int(name[1:]))


def current_id(root):
    link = root / "current"
    return link.resolve().name if link.is_symlink() else None


def point_current(root, release_id):
    """Switch the current symlink in one step: a new link, renamed over the old one."""
    temporary = root / f".current.{os.getpid()}"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(Path("releases") / release_id)
    os.replace(temporary, root / "current")


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def file_sums(folder):
    """{relative name: sha256} of every file of a release but its MANIFEST."""
    return {p.relative_to(folder).as_posix(): sha256(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.relative_to(folder).as_posix() != MANIFEST}


def make_read_only(folder):
    for path in [folder, *folder.rglob("*")]:
        path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o222)  # chmod a-w


def release(args):
    root = deploy_root(args)
    build_folder = root / "builds" / args.build
    if not args.build or Path(args.build).name != args.build or not build_folder.is_dir():
        fail(f"no build {args.build!r}: make one with `python release.py build`")
    config = Path(args.config)
    if not config.is_file():
        fail(f"no config file {config}")
    values = read_config(config)
    releases = root / "releases"
    releases.mkdir(parents=True, exist_ok=True)
    while True:  # mkdir claims the number: two releases at once never share one
        ids = release_ids(root)
        release_id = f"v{int(ids[-1][1:]) + 1 if ids else 1}"
        try:
            (releases / release_id).mkdir()
            break
        except FileExistsError:
            continue
    folder = releases / release_id
    shutil.copytree(build_folder, folder, dirs_exist_ok=True)
    values["SHORTLY_RELEASE"] = release_id
    (folder / RELEASE_ENV).write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    # The checksums tell later whether anything changed: read-only files do not stop root.
    (folder / MANIFEST).write_text("".join(f"{s}  {name}\n" for name, s in file_sums(folder).items()))
    make_read_only(folder)
    point_current(root, release_id)
    print(f"released {release_id}: build {args.build} with the config of {config.name}")
    print(release_id)


def list_releases(args):
    root = deploy_root(args)
    current = current_id(root)
    for release_id in release_ids(root):
        print(release_id + (" (current)" if release_id == current else ""))


# -- verify, rollback ---------------------------------------------------------------------------------------

def chosen(root, release_id):
    """The folder of release_id, or of the current release when it is None."""
    release_id = release_id or current_id(root)
    if not release_id:
        fail("no current release: make one with `python release.py release BUILD --config FILE`")
    folder = root / "releases" / release_id
    if not RELEASE_ID.fullmatch(release_id) or not folder.is_dir():
        fail(f"no release {release_id!r}")
    return folder


def differences(folder):
    """What differs between a release and its MANIFEST: ["changed: shortly.py", ...]; empty when it matches."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return [f"missing: {MANIFEST} (a release that was never finished)"]
    lines = [line.split("  ", 1) for line in manifest.read_text().splitlines() if line]
    recorded = {name: digest for digest, name in lines}
    now = file_sums(folder)
    return ([f"changed: {name}" for name in recorded if name in now and now[name] != recorded[name]]
            + [f"added: {name}" for name in now if name not in recorded]
            + [f"missing: {name}" for name in recorded if name not in now])


def verify(args):
    folder = chosen(deploy_root(args), args.id)
    found = differences(folder)
    if found:
        print(f"release {folder.name} does not match its {MANIFEST}:", *found, sep="\n  ")
        return 1
    print(f"release {folder.name} matches its {MANIFEST}")
    return 0


def rollback(args):
    root = deploy_root(args)
    current = chosen(root, None).name
    earlier = [i for i in release_ids(root) if int(i[1:]) < int(current[1:])]
    if not earlier:
        fail(f"{current} is the first release: there is nothing to roll back to")
    point_current(root, earlier[-1])
    print(f"rolled back from {current} to {earlier[-1]}")
    print(earlier[-1])


# -- run ----------------------------------------------------------------------------------------------------

def run(args):
    root = deploy_root(args)
    folder = chosen(root, args.id)
    found = differences(folder)
    if found:
        print(f"release.py: refusing to run {folder.name}, which changed since it was made:", *found,
              sep="\n  ", file=sys.stderr)
        return 1
    data = root / "var"
    data.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update((key, unquote(value)) for key, value in read_config(folder / RELEASE_ENV).items())
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ inside the release
    if args.process == "web" and not env.get("PORT", "").isdigit():
        fail("set PORT to the port the web process serves on: the platform's, or the operator's, to choose")
    command = process_command(folder, args.process, env)
    print(f"running {folder.name} ({args.process}): {' '.join(command[1:])}, in {data}", flush=True)
    os.chdir(data)  # the app's files (SQLite, log) land in var/, never in the release
    # exec: this process becomes the app's, in the foreground, so the process manager that started it
    # (systemd, honcho, a platform) signals and waits for the app itself
    os.execve(sys.executable, command, env)


def process_command(folder, process_type, env):
    """A line of the release's Procfile as this Python runs it, $VARIABLES filled in from env. Its program is
    Python itself or a console script of this Python's environment (gunicorn, installed from requirements.txt)."""
    procfile = folder / "Procfile"
    lines = procfile.read_text().splitlines() if procfile.is_file() else []
    found = [line.split(":", 1)[1].strip() for line in lines if line.startswith(f"{process_type}:")]
    if not found:
        fail(f"{folder.name} has no Procfile with a `{process_type}:` line: nothing says how to run it")
    # $PORT, $REDIS_URL, …: from the release's environment, as the shell of a platform would fill them in
    words = [re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), word) for word in shlex.split(found[0])]
    while words and words[0] == "exec":  # `exec gunicorn …`: the shell's word for what execve does here
        words.pop(0)
    if not words:
        fail(f"{folder.name}'s Procfile has an empty `{process_type}:` line")
    if words[0] in ("python", "python3") and len(words) > 1 and (folder / words[1]).is_file():
        words[1] = str(folder / words[1])  # `python worker.py`: the release's script, since the process runs in var/
    if words[0] in ("python", "python3"):
        return [sys.executable, *words[1:]]
    program = Path(sys.executable).parent / words[0]
    if not program.is_file():
        fail(f"the {process_type} process runs {words[0]}, which is not installed next to {sys.executable}: "
             "is it in requirements.txt?")
    return [sys.executable, str(program), *words[1:]]


def main(argv=None):
    # --root is accepted before or after the command: release.py --root DIR build, release.py build --root DIR
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", default=argparse.SUPPRESS,
                        help="the deploy root (default: $SHORTLY_DEPLOY_ROOT, else ../shortly-deploy)")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[common])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", parents=[common], help="copy the code into a build").set_defaults(func=build)
    made = commands.add_parser("release", parents=[common], help="combine a build and a config into a release")
    made.add_argument("build")
    made.add_argument("--config", required=True, help="a file of KEY=value lines, e.g. .env")
    made.set_defaults(func=release)
    commands.add_parser("list", parents=[common], help="the releases, oldest first").set_defaults(func=list_releases)
    for name, func, text in (("verify", verify, "check a release against its MANIFEST"),
                             ("run", run, "run a release")):
        command = commands.add_parser(name, parents=[common], help=text)
        command.add_argument("id", nargs="?", help="a release id such as v3 (default: the current one)")
        command.set_defaults(func=func, process="web")
        if name == "run":
            command.add_argument("--process", default="web", metavar="TYPE",
                                 help="the Procfile's process type to run: web (the default, on $PORT) or worker")
    commands.add_parser("rollback", parents=[common], help="make the previous release current").set_defaults(
        func=rollback)
    args = parser.parse_args(argv)
    args.root = getattr(args, "root", None)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
