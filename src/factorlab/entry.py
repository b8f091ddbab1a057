"""The `factorlab` command's entry point (and `python -m factorlab`'s): light on purpose.

`check` and `watch` on the local runner fork apps from the warm Python (runners/warm.py), whose imports take most
of a second. Started here, before the CLI imports its commands and their libraries, it has a head start of a
sixth of a second on every local check.
"""

from __future__ import annotations

import atexit
import os
import sys


def warm_up(argv: list[str]) -> None:
    """Start the warm Python when the command is a local `check` or `watch` (it is idempotent)."""
    if argv[:1] in (["check"], ["watch"]) and "docker" not in argv and "--runner=docker" not in argv:
        from .runners import warm

        warm.prestart()


def main(argv: list[str] | None = None) -> int:
    warm_up(sys.argv[1:] if argv is None else argv)
    from .cli import main as cli_main

    return cli_main(argv)


def run() -> None:
    """The command: main(), then a quick exit. Python's own shutdown frees every object of every module one by
    one, a seventh of a second after a check that nothing here needs: the output is flushed and the exit
    handlers run (they stop the warm Python and the private PostgreSQL), then the process ends."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed pipe: nothing left to tell
            pass
    atexit._run_exitfuncs()
    os._exit(code)
