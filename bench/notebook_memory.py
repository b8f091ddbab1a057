"""Print the peak memory of everything a notebook starts, all at once: its kernel, the apps, PostgreSQL, Redis.

Usage: python bench/notebook_memory.py [NOTEBOOK ...]   (default: notebooks/06_processes.ipynb)

Binder gives a learner about 2 GiB, and the course promises that a notebook and all it starts stay under
1 GiB together. The notebook is executed as nbval does (a fresh kernel, every cell in order) while a
sampler adds up, every 0.1 s, the proportional set size (PSS: shared pages divided among the processes
that share them, so that nothing is counted twice) of every process below this one.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
TARGET_MIB = 1024
DEFAULT = ROOT / "notebooks" / "06_processes.ipynb"


def footprint() -> tuple[int, int]:
    """(total PSS in bytes, number of processes) of every descendant of this process."""
    total, count = 0, 0
    for proc in psutil.Process().children(recursive=True):
        try:
            info = proc.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        total += getattr(info, "pss", info.rss)
        count += 1
    return total, count


def measure(path: Path) -> tuple[int, int, float]:
    """Execute the notebook; return (peak PSS in bytes, processes at the peak, seconds taken)."""
    peak = [0, 0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            total, count = footprint()
            if total > peak[0]:
                peak[:] = [total, count]
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    notebook = nbformat.read(path, as_version=4)
    started = time.monotonic()
    sampler.start()
    try:
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        done.set()
        sampler.join()
    return peak[0], peak[1], time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, default=[DEFAULT])
    args = parser.parse_args()
    worst = 0
    for path in args.notebooks:
        if not path.is_file():
            print(f"{path}: no such notebook", file=sys.stderr)
            return 2
        peak, count, seconds = measure(path.resolve())
        worst = max(worst, peak)
        print(f"{path.name}: peak {peak / 2 ** 20:.0f} MiB (PSS) across {count} processes "
              f"(kernel, apps and servers together); run took {seconds:.0f} s")
    verdict = "met" if worst / 2 ** 20 < TARGET_MIB else "MISSED"
    print(f"largest peak {worst / 2 ** 20:.0f} MiB; target under {TARGET_MIB} MiB: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
