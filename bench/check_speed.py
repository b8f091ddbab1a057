"""Print the median wall time of `factorlab check ID --path solutions/ID` over several runs.

Usage: python bench/check_speed.py [ID ...] [--runs N]   (default: every ready exercise, 5 runs)
The first run of 02 builds a cached clean venv; it is run once untimed to warm that cache.
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from factorlab import catalogue  # noqa: E402

TARGET_S = 3.0


def time_check(exercise_id: str, folder: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "factorlab", "check", exercise_id, "--path", str(folder)],
                          cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"check {exercise_id} did not pass:\n{done.stdout}{done.stderr}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ids", nargs="*")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    course = catalogue.load(ROOT)
    exercises = [course.get(i) for i in args.ids] or [ex for ex in course.exercises if ex.ready]
    worst = 0.0
    for ex in exercises:
        time_check(ex.id, ex.solution)  # warm caches (clean venv, imports)
        times = [time_check(ex.id, ex.solution) for _ in range(args.runs)]
        median = statistics.median(times)
        worst = max(worst, median)
        print(f"factorlab check {ex.id} --path solutions/{ex.id}: median {median:.2f} s over {args.runs} runs "
              f"(min {min(times):.2f}, max {max(times):.2f})")
    print(f"slowest median {worst:.2f} s; target under {TARGET_S:.0f} s: {'met' if worst < TARGET_S else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
