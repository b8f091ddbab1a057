"""Print the median wall time of `factorlab check ID --path solutions/ID` over several runs.

Usage: python bench/check_speed.py [ID ...] [--runs N] [--runner local|docker]
(default: every ready exercise, 5 runs, the local runner; targets: 3 s local, 10 s docker)
Each exercise is checked once untimed first, to warm the caches: the clean venv of 02 locally,
the dependency image with --runner docker (which needs an engine: DOCKER_HOST, and offline
FACTORLAB_BASE_IMAGE and FACTORLAB_WHEELHOUSE as in .ci/run).
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

TARGET_S = {"local": 3.0, "docker": 10.0}


def time_check(exercise_id: str, folder: Path, runner: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "factorlab", "check", exercise_id, "--path", str(folder),
                           "--runner", runner], cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"check {exercise_id} did not pass:\n{done.stdout}{done.stderr}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ids", nargs="*")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--runner", choices=sorted(TARGET_S), default="local")
    args = parser.parse_args()
    target = TARGET_S[args.runner]
    course = catalogue.load(ROOT)
    exercises = [course.get(i) for i in args.ids] or [ex for ex in course.exercises if ex.ready]
    worst = 0.0
    for ex in exercises:
        time_check(ex.id, ex.solution, args.runner)  # warm caches (clean venv or dependency image, imports)
        times = [time_check(ex.id, ex.solution, args.runner) for _ in range(args.runs)]
        median = statistics.median(times)
        worst = max(worst, median)
        print(f"factorlab check {ex.id} --path solutions/{ex.id} --runner {args.runner}: median {median:.2f} s "
              f"over {args.runs} runs (min {min(times):.2f}, max {max(times):.2f})")
    print(f"slowest median {worst:.2f} s; target under {target:.0f} s: {'met' if worst < target else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
