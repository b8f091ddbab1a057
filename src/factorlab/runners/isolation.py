"""Instances isolated as separate machines are: each sees a /tmp, /var/tmp and /dev/shm of its own, and a
/var, /srv, /opt and /run it writes to alone.

Two processes on one machine share its temporary folders and its disk; two deploys on two machines do not. An
app that keeps per-user state in /tmp or /var/cache would pass a check of two instances side by side on one
machine, and fail on two machines. So where Linux lets us (as root, or in a user namespace), each instance
gets a new mount namespace with empty temporary folders, and the folders where a machine keeps its data
(DATA_FOLDERS) as copies of its own: an overlay whose writes land on a private tmpfs, best effort (a folder
that holds the app, its Python or factorlab itself stays as it is; a machine without overlays keeps them
shared, where only root could write anyway). Elsewhere (macOS, a locked-down container) the runner says so in
the check's message. runners/preload.py does the same for the warm Python: keep the two in step.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import threading

# The temporary folders an instance gets empty copies of, and their sizes.
TEMP_FOLDERS = (("/tmp", "64m"), ("/var/tmp", "64m"), ("/dev/shm", "16m"))
# Inside the new namespace: empty temporary folders, the parent-death signal armed again (entering a user
# namespace clears it), then the app. (Programs by their full paths: the app's PATH may hold nothing but a
# clean virtual environment; a /dev/shm that cannot be replaced is left as it is.)
MOUNT = "{mount} -t tmpfs -o size={size} tmpfs {folder}"
# The folders where a machine keeps its data (the FHS's), each made an overlay of its own per instance. /var
# last: its overlay covers LAYERS, the tmpfs that holds every overlay's upper layer (then the private /var/tmp
# covers that in turn, so the app never sees the layers).
DATA_FOLDERS = ("/run", "/srv", "/opt", "/var")
LAYERS = "/var/tmp"
LAYERS_SIZE = "64m"
OVERLAY = "{mount} -t overlay overlay -o lowerdir={folder},upperdir={layer}/upper,workdir={layer}/work {folder}"
EXEC = 'exec {setpriv} --pdeathsig KILL -- "$@"'
KEEP_FDS = (3, 4, 5, 6, 7, 8, 9)  # the file descriptors a POSIX shell can name, for folders kept visible
NOT_ISOLATED = ("note: on this machine the instances shared /tmp and /dev/shm, which separate machines would not "
                "(a container check isolates them)")
_probe: dict[str, list[str] | None] = {}
_lock = threading.Lock()


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def needed(workspace: str | os.PathLike | None, env: dict[str, str] | None = None) -> list[str]:
    """What an instance must see as it is, wherever it lives: its folder, factorlab's cache and scratch, the
    Python, its packages and factorlab itself (a course cloned under /tmp, an app copied there), and the folders
    its environment names (a PYTHONPATH entry, the folder of a sqlite:/// file)."""
    from ..files import scratch_base
    from ..process import cache_root

    paths = [workspace, cache_root(), scratch_base(), sys.prefix, sys.base_prefix,
             os.path.dirname(sys.executable), os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
             *(p for p in sys.path if os.path.isabs(p))]
    for value in (env or {}).values():
        for part in value.replace("sqlite:///", "", 1).split(os.pathsep):
            if part.startswith("/"):
                paths.append(part if os.path.isdir(part) else os.path.dirname(part))
    return sorted({os.path.realpath(p) for p in paths if p and os.path.isdir(p)})


def kept_in_temp(paths: list[str]) -> list[str]:
    """The outermost of paths that lie in a temporary folder: bound back into the instance's empty copy of it."""
    inside = sorted(p for p in paths if any(_under(p, folder) for folder, _ in TEMP_FOLDERS))
    kept: list[str] = []
    for path in inside:
        if not any(_under(path, top) for top in kept):
            kept.append(path)
    return kept


def data_folders(paths: list[str]) -> list[str]:
    """The DATA_FOLDERS an instance gets a copy of its own: those that exist as real folders and hold none of
    the paths it must see as they are."""
    return [folder for folder in DATA_FOLDERS if os.path.isdir(folder) and not os.path.islink(folder)
            and not any(_under(path, folder) for path in paths)]


def _overlays(tools: dict, folders: list[str]) -> list[str]:
    """Shell commands that give each folder an overlay of its own; any that fails leaves its folder as it is."""
    if not folders:
        return []
    layers = {folder: f"{LAYERS}/.layers/{folder.strip('/')}" for folder in folders}
    steps = [MOUNT.format(mount=tools["mount"], size=LAYERS_SIZE, folder=LAYERS),
             f"{tools['mkdir']} -p " + " ".join(f"{layer}/upper {layer}/work" for layer in layers.values()),
             *(f"{{ {OVERLAY.format(mount=tools['mount'], folder=folder, layer=layer)} || true; }}"
               for folder, layer in layers.items())]
    return ["{ " + " && ".join(steps) + "; } 2>/dev/null || true"]


def _candidate(folders, data: list[str] = (), kept: list[str] = ()) -> list[str] | None:
    tools = {tool: shutil.which(tool) for tool in ("unshare", "setpriv", "mount", "sh", "mkdir")}
    if not all(tools.values()) or len(kept) > len(KEEP_FDS):
        return None
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    mounts = [MOUNT.format(mount=tools["mount"], size=size, folder=folder)
              + (" 2>/dev/null || true" if folder == "/dev/shm" else "") for folder, size in folders]
    # what must stay visible is opened before the temporary folders are covered, and bound back after
    opened = [f"exec {fd}<{shlex.quote(path)}" for fd, path in zip(KEEP_FDS, kept)]
    bound = [f"{tools['mkdir']} -p {shlex.quote(path)} && {tools['mount']} --no-canonicalize --bind /proc/self/fd/{fd} "
             f"{shlex.quote(path)} && exec {fd}<&-" for fd, path in zip(KEEP_FDS, kept)]
    script = " && ".join([*opened, *_overlays(tools, list(data)),
                          *(f"{{ {m}; }}" if m.endswith("true") else m for m in mounts), *bound,
                          *(['cd -- "$PWD"'] if kept else []), EXEC.format(setpriv=tools["setpriv"])])
    return [tools["unshare"], "--mount", "--propagation", "private", *user, "--", tools["sh"], "-c", script, "sh"]


def prefix(workspace: str | os.PathLike | None = None, env: dict[str, str] | None = None) -> list[str] | None:
    """The command that runs argv, started in `workspace`, in a mount namespace with private temporary folders
    and copies of its own of the data folders; None where this machine cannot (found out once, by trying)."""
    with _lock:
        if "prefix" not in _probe:
            found = _candidate(TEMP_FOLDERS)
            if found:
                try:
                    done = subprocess.run([*found, "sh", "-c", "test -z \"$(ls -A /tmp)\" && echo isolated"],
                                          capture_output=True, text=True, timeout=10)
                    found = found if done.stdout.strip() == "isolated" else None
                except (OSError, subprocess.SubprocessError):
                    found = None
            _probe["prefix"] = found
        if _probe["prefix"] is None:
            return None
    paths = needed(workspace, env)
    return _candidate(TEMP_FOLDERS, data_folders(paths), kept_in_temp(paths))
