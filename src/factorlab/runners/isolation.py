"""Instances isolated as separate machines are: each sees a /tmp, /var/tmp and /dev/shm of its own.

Two processes on one machine share its temporary folders; two deploys on two machines do not. An app that
keeps per-user state in /tmp would pass a check of two instances side by side on one machine, and fail on
two machines. So where Linux lets us (as root, or in a user namespace), each instance gets a new mount
namespace with empty temporary folders; elsewhere (macOS, a locked-down container) the runner says so in
the check's message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading

# The temporary folders an instance gets empty copies of, and their sizes.
TEMP_FOLDERS = (("/tmp", "64m"), ("/var/tmp", "64m"), ("/dev/shm", "16m"))
# Inside the new namespace: empty temporary folders, the parent-death signal armed again (entering a user
# namespace clears it), then the app. (Programs by their full paths: the app's PATH may hold nothing but a
# clean virtual environment; a /dev/shm that cannot be replaced is left as it is.)
MOUNT = "{mount} -t tmpfs -o size={size} tmpfs {folder}"
EXEC = 'exec {setpriv} --pdeathsig KILL -- "$@"'
NOT_ISOLATED = ("note: on this machine the instances shared /tmp and /dev/shm, which separate machines would not "
                "(a container check isolates them)")
_probe: dict[str, list[str] | None] = {}
_lock = threading.Lock()


def replaceable(workspace: str | os.PathLike) -> list[tuple[str, str]]:
    """The temporary folders that can be replaced for an app in `workspace`: not one that holds the app
    itself (an app copied under /tmp keeps the /tmp it is in)."""
    where = os.path.realpath(workspace)
    return [(folder, size) for folder, size in TEMP_FOLDERS
            if not (where == folder or where.startswith(folder.rstrip("/") + "/"))]


def _candidate(folders) -> list[str] | None:
    tools = {tool: shutil.which(tool) for tool in ("unshare", "setpriv", "mount", "sh")}
    if not all(tools.values()):
        return None
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    mounts = [MOUNT.format(mount=tools["mount"], size=size, folder=folder)
              + (" 2>/dev/null || true" if folder == "/dev/shm" else "") for folder, size in folders]
    script = " && ".join([*(f"{{ {m}; }}" if m.endswith("true") else m for m in mounts),
                          EXEC.format(setpriv=tools["setpriv"])])
    return [tools["unshare"], "--mount", "--propagation", "private", *user, "--", tools["sh"], "-c", script, "sh"]


def prefix(workspace: str | os.PathLike | None = None) -> list[str] | None:
    """The command that runs argv, started in `workspace`, in a mount namespace with private temporary folders;
    None where this machine cannot (found out once, by trying) or the app lives in a temporary folder."""
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
    folders = TEMP_FOLDERS if workspace is None else replaceable(workspace)
    return _candidate(folders) if len(folders) == len(TEMP_FOLDERS) else None
