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

# Inside the new namespace: empty temporary folders, the parent-death signal armed again (entering a user
# namespace clears it), then the app.
# (Programs by their full paths: the app's PATH may hold nothing but a clean virtual environment.)
MOUNTS = ("{mount} -t tmpfs -o size=64m tmpfs /tmp && {mount} -t tmpfs -o size=64m tmpfs /var/tmp && "
          "{{ {mount} -t tmpfs -o size=16m tmpfs /dev/shm 2>/dev/null || true; }} && "
          'exec {setpriv} --pdeathsig KILL -- "$@"')
NOT_ISOLATED = ("note: on this machine the instances shared /tmp and /dev/shm, which separate machines would not "
                "(a container check isolates them)")
_probe: dict[str, list[str] | None] = {}
_lock = threading.Lock()


def _candidate() -> list[str] | None:
    tools = {tool: shutil.which(tool) for tool in ("unshare", "setpriv", "mount", "sh")}
    if not all(tools.values()):
        return None
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    script = MOUNTS.format(mount=tools["mount"], setpriv=tools["setpriv"])
    return [tools["unshare"], "--mount", "--propagation", "private", *user, "--", tools["sh"], "-c", script, "sh"]


def prefix() -> list[str] | None:
    """The command that runs argv in a mount namespace with private temporary folders, or None where this
    machine cannot (found out once, by trying)."""
    with _lock:
        if "prefix" not in _probe:
            found = _candidate()
            if found:
                try:
                    done = subprocess.run([*found, "sh", "-c", "test -z \"$(ls -A /tmp)\" && echo isolated"],
                                          capture_output=True, text=True, timeout=10)
                    found = found if done.stdout.strip() == "isolated" else None
                except (OSError, subprocess.SubprocessError):
                    found = None
            _probe["prefix"] = found
        return _probe["prefix"]
