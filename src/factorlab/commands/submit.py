"""`factorlab submit`: pack the learner's exercise folders into one archive for their instructor."""

from __future__ import annotations

from .. import catalogue as cat
from .. import submission
from . import UsageError


def run(args) -> int:
    catalogue = cat.load()
    try:
        packed = submission.pack(catalogue, args.student, args.out)
    except submission.Refused as exc:
        raise UsageError(f"submit: {exc}") from None
    size = packed.size
    shown = f"{size / 1024:.1f} KiB" if size < 1024 * 1024 else f"{size / 2**20:.1f} MiB"
    print(f"wrote {packed.path} ({shown}): {len(packed.exercises)} exercise folder(s), {len(packed.files)} files, "
          f"as {packed.student}")
    if packed.left_out:
        print(f"left out {len(packed.left_out)} file(s) a run writes or that hold local config: "
              + ", ".join(packed.left_out[:6]) + (" …" if len(packed.left_out) > 6 else ""))
    print("Hand this file in as your instructor asked (download it from JupyterLab's file browser: right-click, "
          "Download).")
    return 0
