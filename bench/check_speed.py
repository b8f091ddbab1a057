"""Print the median wall time of `factorlab check ID --path solutions/ID`, for each runner, over several runs.

Usage: python bench/check_speed.py [ID ...] [--runs N] [--runner local|docker]
(default: every ready exercise, 5 runs, the local runner and, when a Docker engine answers, the docker runner;
targets: 3 s local, 10 s docker). Each exercise is checked once untimed first, to warm the caches: the clean
venv of 02 locally, the dependency image with --runner docker (which needs an engine: DOCKER_HOST, and offline
FACTORLAB_BASE_IMAGE and FACTORLAB_WHEELHOUSE as in .ci/run).
"""

import argparse
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from factorlab import catalogue  # noqa: E402
from factorlab.docker import engine_available  # noqa: E402

TARGET_S = {"local": 3.0, "docker": 10.0}


def time_check(exercise_id: str, folder: Path, runner: str) -> float:
    # Start at a random point of the second, as a learner would: back-to-back runs all start just after a whole
    # second, and a check that waits for whole seconds to pass (session expiry) would always pay the most.
    time.sleep(random.random())
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
    parser.add_argument("--runner", choices=sorted(TARGET_S))
    args = parser.parse_args()
    course = catalogue.load(ROOT)
    exercises = [course.get(i) for i in args.ids] or [ex for ex in course.exercises if ex.ready]
    runners = [args.runner] if args.runner else ["local", *(["docker"] if engine_available() else [])]
    missed = []
    for runner in runners:
        worst = 0.0
        for ex in exercises:
            time_check(ex.id, ex.solution, runner)  # warm caches (clean venv or dependency image, imports)
            times = [time_check(ex.id, ex.solution, runner) for _ in range(args.runs)]
            median = statistics.median(times)
            worst = max(worst, median)
            print(f"factorlab check {ex.id} --path solutions/{ex.id} --runner {runner}: median {median:.2f} s "
                  f"over {args.runs} runs (min {min(times):.2f}, max {max(times):.2f})", flush=True)
        met = worst < TARGET_S[runner]
        missed += [] if met else [runner]
        print(f"{runner}: slowest median {worst:.2f} s; target under {TARGET_S[runner]:.0f} s: "
              f"{'met' if met else 'MISSED'}", flush=True)
    if not args.runner and "docker" not in runners:
        print("docker: no Docker engine answers here (DOCKER_HOST), so no container times")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
