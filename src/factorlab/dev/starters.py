"""Record each starter's git tree id in exercises.toml (`starter = "…"`), for `factorlab reset`.

    python -m factorlab.dev.starters          write the ids of exercises/ID as they are now
    python -m factorlab.dev.starters --check  exit 1 when a recorded id is stale

Run it after changing a starter, and commit exercises.toml with the change.
"""

from __future__ import annotations

import argparse
import re
import sys

from .. import catalogue as cat
from ..starters import tree_of


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m factorlab.dev.starters", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether the recorded ids are current")
    args = parser.parse_args(argv)
    catalogue = cat.load()
    path = catalogue.root / cat.CATALOGUE_FILE
    text = path.read_text()
    stale = []
    for exercise in catalogue.exercises:
        if not exercise.ready:
            continue
        tree = tree_of(catalogue, exercise)
        if tree == exercise.starter_tree:
            continue
        stale.append(exercise.id)
        line = f'id = "{exercise.id}"'
        block = re.compile(rf'^{re.escape(line)}\n(starter = "[0-9a-f]*"\n)?', re.M)
        text = block.sub(f'{line}\nstarter = "{tree}"\n', text, count=1)
    if args.check:
        print(f"stale starter ids: {', '.join(stale)}" if stale else "every starter id is current")
        return 1 if stale else 0
    path.write_text(text)
    print(f"recorded: {', '.join(stale)}" if stale else "every starter id was current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
