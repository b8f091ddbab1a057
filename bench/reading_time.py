"""Print each notebook's reading time beside the catalogue's minutes for its factor.

Usage: python bench/reading_time.py
Reading: every word of the notebook's text source (notebooks/source/NN_slug.py: the narration and the code
cells, which a learner reads too) at 200 words a minute. Exercise: the lines the learner writes (the
solution's lines that the exercise's starter lacks, by `git diff`, blank lines left out: nobody spends half a
minute on one) at 2 lines a minute, thinking included: code, comments and the runbook's prose alike. A factor fits when reading plus exercise is within its `minutes` in exercises.toml; exit 1 when one
does not.
"""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from factorlab import catalogue  # noqa: E402

WORDS_A_MINUTE = 200
LINES_A_MINUTE = 2
CELL = re.compile(r"^# %%.*$", re.MULTILINE)


def words(source: Path) -> int:
    """The words of a percent-format source, cell markers and the header left out."""
    text = source.read_text()
    body = text[text.index("# %%"):] if "# %%" in text else text
    return len(CELL.sub("", body).replace("# ", " ").split())


def lines_to_write(starter: Path, solution: Path) -> int:
    """Lines the solution has that the starter does not (added or changed, blank ones aside), every file of the
    app."""
    done = subprocess.run(["git", "diff", "--no-index", "--no-color", "--unified=0", str(starter), str(solution)],
                          capture_output=True, text=True)
    added, in_hunk = 0, False
    for line in done.stdout.splitlines():
        if line.startswith(("diff --git ", "@@")):
            in_hunk = line.startswith("@@")  # a file's header (its +++ line among them) is not a hunk
        elif in_hunk and line.startswith("+") and line[1:].strip():
            added += 1
    return added


def main() -> int:
    course = catalogue.load(ROOT)
    over = []
    print(f"{'notebook':26} {'words':>6} {'reading':>8} {'lines':>6} {'exercise':>9} {'total':>6} {'estimate':>9}")
    for source in sorted((ROOT / "notebooks" / "source").glob("[0-9][0-9]_*.py")):
        count = words(source)
        reading = count / WORDS_A_MINUTE
        exercise = next((ex for ex in course.exercises if ex.id == source.stem and ex.ready), None)
        if exercise is None:  # 00, the welcome: no exercise, no estimate of its own
            print(f"{source.stem:26} {count:6d} {reading:7.0f}m")
            continue
        lines = lines_to_write(exercise.starter, exercise.solution)
        total = reading + lines / LINES_A_MINUTE
        fits = total <= exercise.minutes
        over += [] if fits else [source.stem]
        print(f"{source.stem:26} {count:6d} {reading:7.0f}m {lines:6d} {lines / LINES_A_MINUTE:8.0f}m "
              f"{total:5.0f}m {exercise.minutes:8d}m {'fits' if fits else 'OVER'}")
    print(f"at {WORDS_A_MINUTE} words and {LINES_A_MINUTE} lines of the learner's code a minute: "
          + (f"over the estimate: {', '.join(over)}" if over else "every factor within its estimate"))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
