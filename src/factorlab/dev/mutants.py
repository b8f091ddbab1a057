"""The mutation suite: every check against wrong work, every factor against correct work written differently.

Corpus files per exercise, `tests/mutants/NN_slug.toml` (and `NN_slug.<more>.toml`), hold two kinds of variant of the reference
solution `solutions/NN_slug`:

- a mutant puts the factor's sin back, in a way the starter does not (another spelling, another file,
  another route, another code path). It names the checks it must fail (`kills`). A mutant that undoes
  one TODO of the exercise says which (`undoes = "FILE: words of the TODO"`).
- an alternative is a correct fix written differently from the reference. It must pass every check of its
  factor and of every factor before it.

Each variant is a list of edits applied to a copy of the solution, which then becomes a git repository
with one commit, as a learner's own copy would be (`repo = "none"` or `"init"` for the codebase factor's
mutants; `[[mutant.branch]]` adds a branch with edits of its own).

    python -m factorlab.dev.mutants [ID ...] [--runner local|docker] [--name WORD]

prints each variant's verdict and the kill rate per check.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .. import catalogue as cat
from .. import files
from ..checks import run_exercise
from ..results import PASSED, Report

CORPUS = Path("tests") / "mutants"
REPOS = ("commit", "init", "none")
GIT_USER = ["-c", "user.name=factorlab mutants", "-c", "user.email=mutants@factorlab.invalid"]


class CorpusError(Exception):
    """A corpus file is malformed, or an edit no longer applies to the solution."""


@dataclass(frozen=True)
class Edit:
    """One change to a file of the solution: replace old by new (exactly once), write, append, delete, rename,
    or copy a file of the course (a path from the course root) over it."""

    file: str
    old: str | None = None
    new: str | None = None
    write: str | None = None
    append: str | None = None
    delete: bool = False
    rename: str | None = None
    copy: str | None = None

    def apply(self, root: Path, course: Path) -> None:
        path = root / self.file
        if self.copy is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes((course / self.copy).read_bytes())
        elif self.write is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.write)
        elif self.delete:
            if not path.exists():
                raise CorpusError(f"{self.file}: nothing to delete")
            path.unlink()
        elif self.rename is not None:
            if not path.exists():
                raise CorpusError(f"{self.file}: nothing to rename")
            (root / self.rename).parent.mkdir(parents=True, exist_ok=True)
            path.rename(root / self.rename)
        elif self.append is not None:
            path.write_text((path.read_text() if path.exists() else "") + self.append)
        else:
            text = path.read_text() if path.exists() else None
            if text is None or self.old is None or text.count(self.old) != 1:
                found = "no such file" if text is None else f"found {text.count(self.old or '')} times"
                raise CorpusError(f"{self.file}: the passage to replace ({found}) no longer applies:\n{self.old}")
            path.write_text(text.replace(self.old, self.new or ""))


@dataclass(frozen=True)
class Variant:
    """A mutant or an alternative of one exercise's solution."""

    exercise: str
    kind: str  # "mutant" or "alternative"
    name: str
    why: str
    edits: tuple[Edit, ...]
    kills: tuple[str, ...] = ()
    undoes: str = ""
    repo: str = "commit"
    branches: tuple[tuple[str, tuple[Edit, ...]], ...] = ()
    later: tuple[Edit, ...] = ()  # made after the commit, and not committed

    @property
    def id(self) -> str:
        return f"{self.exercise}/{self.kind}/{self.name}"


@dataclass
class Outcome:
    """A variant's verdicts, and whether they are the right ones."""

    variant: Variant
    report: Report | None = None
    problem: str = ""
    statuses: dict[str, str] = field(default_factory=dict)

    @property
    def right(self) -> bool:
        if self.problem or self.report is None:
            return False
        if self.variant.kind == "mutant":
            return all(self.statuses.get(check) == "failed" for check in self.variant.kills)
        return self.report.passed

    def describe(self) -> str:
        if self.problem:
            return f"{self.variant.id}: {self.problem}"
        if self.variant.kind == "mutant":
            wrong = [f"{c} {self.statuses.get(c, 'not run')}" for c in self.variant.kills
                     if self.statuses.get(c) != "failed"]
            return f"{self.variant.id}: " + ("killed" if not wrong else "SURVIVED: " + ", ".join(wrong))
        wrong = [r for r in self.report.results if r.status != PASSED]
        return f"{self.variant.id}: " + ("passed" if not wrong else "REFUSED:\n" + "\n".join(
            f"  {r.check} {r.status}: {r.message}" for r in wrong))


def _edits(raw: list[dict], where: str) -> tuple[Edit, ...]:
    known = {"file", "old", "new", "write", "append", "delete", "rename", "copy"}
    edits = []
    for item in raw:
        if not isinstance(item, dict) or "file" not in item or set(item) - known:
            raise CorpusError(f"{where}: an edit needs `file` and one of old/new, write, append, delete, rename, copy")
        edits.append(Edit(**item))
    return tuple(edits)


def load(root: Path, catalogue: cat.Catalogue) -> list[Variant]:
    """Every variant of the corpus under root/tests/mutants, in file order."""
    variants = []
    for path in sorted((root / CORPUS).glob("*.toml")):
        name = path.name.split(".")[0]  # NN_slug.toml, or NN_slug.<more>.toml
        try:
            exercise = catalogue.get(name)
        except cat.CatalogueError:
            raise CorpusError(f"{path.name}: expected a file named after an exercise id, such as 01_codebase.toml") \
                from None
        if exercise.id != name:
            raise CorpusError(f"{path.name}: expected a file named after an exercise id, such as {exercise.id}.toml")
        data = tomllib.loads(path.read_text())
        for kind, key in (("mutant", "mutant"), ("alternative", "alternative")):
            for item in data.get(key, []):
                where = f"{path.name} {kind} {item.get('name', '?')}"
                if not item.get("name") or not item.get("why"):
                    raise CorpusError(f"{where}: every variant needs a name and a why")
                repo = item.get("repo", "commit")
                if repo not in REPOS:
                    raise CorpusError(f"{where}: repo must be one of {', '.join(REPOS)}")
                kills = tuple(item.get("kills", ()))
                if kind == "mutant" and not kills:
                    raise CorpusError(f"{where}: a mutant names the checks it must fail (kills)")
                branches = tuple((b["name"], _edits(b.get("edit", []), where)) for b in item.get("branch", []))
                variants.append(Variant(exercise.id, kind, item["name"], item["why"], _edits(item.get("edit", []), where),
                                        kills, item.get("undoes", ""), repo, branches, _edits(item.get("later", []), where)))
    return variants


def _git(folder: Path, *args: str) -> None:
    subprocess.run(["git", *GIT_USER, "-C", str(folder), *args], check=True, capture_output=True, timeout=60)


def materialise(variant: Variant, catalogue: cat.Catalogue, dest: Path) -> Path:
    """The solution with the variant's edits, as a repository of its own (unless repo says otherwise)."""
    folder = files.copy_app(catalogue.get(variant.exercise).solution, dest)
    for edit in variant.edits:
        edit.apply(folder, catalogue.root)
    if variant.repo != "none":
        _git(folder, "init", "-q", "-b", "main")
    if variant.repo == "commit":
        _git(folder, "add", "-A")
        _git(folder, "commit", "-q", "--allow-empty", "-m", f"{variant.kind}: {variant.name}")
        for name, edits in variant.branches:
            if not edits:  # a branch that points where main does
                _git(folder, "branch", name)
                continue
            _git(folder, "switch", "-q", "-c", name)
            for edit in edits:
                edit.apply(folder, catalogue.root)
            _git(folder, "add", "-A")
            _git(folder, "commit", "-q", "-m", f"branch {name}")
            _git(folder, "switch", "-q", "main")
    for edit in variant.later:
        edit.apply(folder, catalogue.root)
    return folder


def judge(variant: Variant, catalogue: cat.Catalogue, runner: str = "local") -> Outcome:
    """Run the variant's checks: a mutant's kills, or every check through an alternative's factor."""
    exercise = catalogue.get(variant.exercise)
    ids = list(variant.kills) if variant.kind == "mutant" else catalogue.checks_through(exercise)
    with tempfile.TemporaryDirectory(prefix="factorlab-mutant-") as scratch:
        try:
            folder = materialise(variant, catalogue, Path(scratch) / "app")
        except CorpusError as exc:
            return Outcome(variant, problem=str(exc))
        report = run_exercise(exercise, folder, catalogue, runner=runner, check_ids=ids)
    return Outcome(variant, report, statuses={r.check: r.status for r in report.results})


def kill_rates(outcomes: list[Outcome], catalogue: cat.Catalogue) -> str:
    """A table: for every check of the catalogue, its mutants and how many it killed; then the alternatives."""
    lines = [f"{'check':<42} {'mutants':>7} {'killed':>6}  rate"]
    for exercise in catalogue.exercises:
        for check_id in exercise.checks:
            mine = [o for o in outcomes if o.variant.kind == "mutant" and check_id in o.variant.kills]
            killed = sum(o.statuses.get(check_id) == "failed" for o in mine)
            rate = f"{killed / len(mine):.0%}" if mine else "-"
            lines.append(f"{check_id:<42} {len(mine):>7} {killed:>6}  {rate}")
    for exercise in catalogue.exercises:
        mine = [o for o in outcomes if o.variant.kind == "alternative" and o.variant.exercise == exercise.id]
        if mine:
            lines.append(f"{exercise.id}: {sum(o.right for o in mine)} of {len(mine)} alternative fixes passed")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m factorlab.dev.mutants", description=__doc__.splitlines()[0])
    parser.add_argument("ids", nargs="*", help="exercises (default: every one with a corpus file)")
    parser.add_argument("--runner", choices=["local", "docker"], default="local")
    parser.add_argument("--name", default="", help="only variants whose name contains this")
    parser.add_argument("--jobs", type=int, default=2, help="variants judged side by side (default 2)")
    args = parser.parse_args(argv)
    catalogue = cat.load()
    wanted = {catalogue.get(i).id for i in args.ids}
    variants = [v for v in load(catalogue.root, catalogue)
                if (not wanted or v.exercise in wanted) and args.name in v.name]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        outcomes = list(pool.map(lambda v: judge(v, catalogue, args.runner), variants))
    for outcome in outcomes:
        print(outcome.describe())
    print(kill_rates(outcomes, catalogue))
    wrong = [o for o in outcomes if not o.right]
    print(f"{len(outcomes) - len(wrong)} of {len(outcomes)} verdicts right")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
