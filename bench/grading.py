"""Grade a generated class and print the wall time: `factorlab grade` of N submissions through a factor.

Usage: python bench/grading.py [--students 30] [--through 06] [--jobs 2] [--runner docker|local] [--unique] [--own]
(target: 30 submissions through factor VI in under 10 minutes on a 2-core machine with the docker runner, which
needs an engine: DOCKER_HOST, and offline FACTORLAB_BASE_IMAGE and FACTORLAB_WHEELHOUSE as in .ci/run).

The class is made the way learners make submissions: a clone of the course per learner, its exercise folders
solved (the reference solution plus a line of the learner's own, so no two are alike), broken (a syntax
error, an app that hangs at start, an unpinned dependency) or left as shipped, then `factorlab submit`. Five
profiles take turns: all six done; four done and the fifth broken; two done and a wrong fix; all done but
the sixth hangs; five done. A learner's untouched starter is the same as every other's, and `grade` checks
those once (it prints how many folders it checked and how many shared a verdict). --unique gives every
folder a line of its own: the worst case, where nothing is shared.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from factorlab import catalogue  # noqa: E402

TARGET_S = 600.0
PROFILES = [  # per exercise, in order: solved, broken (how), or left as shipped
    ["solved"] * 6,
    ["solved"] * 4 + ["syntax", "starter"],
    ["solved"] * 2 + ["wrong", "starter", "starter", "starter"],
    ["solved"] * 5 + ["hang"],
    ["solved"] * 5 + ["starter"],
]


def make_class(folder: Path, students: int, through: int, unique: bool) -> list[Path]:
    course = folder / "course"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(course)], check=True)
    exercises = [ex for ex in catalogue.load(course).exercises if ex.factor <= through]
    made = []
    for n in range(students):
        subprocess.run(["git", "-C", str(course), "checkout", "-q", "--", "exercises"], check=True)
        subprocess.run(["git", "-C", str(course), "clean", "-qfdx", "exercises"], check=True)
        for exercise, state in zip(exercises, PROFILES[n % len(PROFILES)]):
            target = course / "exercises" / exercise.id
            if state != "starter":
                shutil.rmtree(target)
                shutil.copytree(ROOT / "solutions" / exercise.id, target)
            app = target / "shortly.py"
            if state == "syntax":
                app.write_text(app.read_text() + "\ndef unfinished(:\n")
            elif state == "hang":
                app.write_text("import time\nwhile True:\n    time.sleep(1)\n" + app.read_text())
            elif state == "wrong":
                (target / "requirements.txt").write_text("flask\nsqlalchemy\n")
            if state != "starter" or unique:
                app.write_text(app.read_text() + f"\n# student {n:02d}\n")
        out = folder / f"student{n:02d}.zip"
        done = subprocess.run([sys.executable, "-m", "factorlab", "submit", "--student", f"student{n:02d}", "--out",
                               str(out)], cwd=course, env={**os.environ, "FACTORLAB_COURSE": str(course)},
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"submit failed:\n{done.stdout}{done.stderr}")
        made.append(out)
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--through", type=int, default=6)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--runner", default="docker", choices=["docker", "local"])
    parser.add_argument("--unique", action="store_true", help="no two exercise folders alike: nothing is shared")
    parser.add_argument("--own", action="store_true", help="grade --own: each folder with its own factor's checks")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="factorlab-bench-grading-") as scratch:
        folder = Path(scratch)
        archives = make_class(folder, args.students, args.through, args.unique)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "factorlab", "grade", *map(str, archives), "--factors",
                               f"01-{args.through:02d}", "--jobs", str(args.jobs), "--runner", args.runner,
                               "--out", str(folder / "grades"), *(["--own"] if args.own else [])],
                              cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"grade failed:\n{done.stdout}{done.stderr}")
        data = json.loads((folder / "grades" / "grades.json").read_text())
        results = [r for s in data["submissions"] for e in s["exercises"].values() for r in e["results"]]
        shared = {(s["id"], ex) for s in data["submissions"] for ex, e in s["exercises"].items()
                  if any("verdict is shared" in r["message"] for r in e["results"])}
        folders = sum(len(s["exercises"]) for s in data["submissions"])
        scores = [s["score"] for s in data["submissions"]]
    print(done.stdout.strip().splitlines()[-1])
    mode = "--own" if args.own else "cumulative"
    print(f"{len(archives)} submissions through factor {args.through:02d} ({mode}, {args.runner} runner, --jobs {args.jobs}"
          f"{', every folder unique' if args.unique else ''}): {wall:.0f} s wall, {wall / len(archives):.1f} s per "
          f"submission; {folders - len(shared)} exercise folders checked, {len(shared)} shared a verdict; "
          f"{len(results)} check results; scores {sorted(scores)}")
    print(f"target: {TARGET_S:.0f} s for 30 submissions through factor 06 -> "
          + ("met" if wall <= TARGET_S or args.students != 30 or args.through != 6 else "NOT met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
