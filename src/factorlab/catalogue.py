"""The course catalogue, read from exercises.toml at the course root."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

CATALOGUE_FILE = "exercises.toml"


class CatalogueError(Exception):
    """The catalogue is missing or an id does not name an exercise."""


@dataclass(frozen=True)
class Exercise:
    """One factor's exercise: where its files live and which checks apply."""

    id: str
    factor: int
    title: str
    summary: str
    url: str
    root: Path
    minutes: int = 0
    sin: str = ""
    fix: str = ""
    checks: tuple[str, ...] = ()
    hints: tuple[str, ...] = ()
    starter_tree: str = ""  # the git tree id of exercises/ID as the course ships it (`factorlab reset` restores it)
    # What the runbook (OPS.md) must no longer say, and what it must say, once the factor is done:
    # {"retired": [[regex, words], ...], "documented": [[regex, words], ...]}
    runbook: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def ready(self) -> bool:
        return bool(self.checks)

    @property
    def number(self) -> str:
        return self.id[:2]

    @property
    def name(self) -> str:
        return self.id[3:]

    @property
    def starter(self) -> Path:
        return self.root / "exercises" / self.id

    @property
    def solution(self) -> Path:
        return self.root / "solutions" / self.id


@dataclass(frozen=True)
class Catalogue:
    """Every exercise of the course, in factor order."""

    root: Path
    title: str
    legacy: Path
    app: str
    exercises: tuple[Exercise, ...] = field(default_factory=tuple)

    def get(self, key: str) -> Exercise:
        """Find an exercise by `03`, `3`, `03_config` or `config`."""
        key = key.strip().lower().replace("-", "_")
        for ex in self.exercises:
            if key in (ex.id, ex.number, ex.name, str(ex.factor)):
                return ex
        valid = ", ".join(ex.id for ex in self.exercises)
        raise CatalogueError(f"unknown exercise {key!r}: expected one of {valid}")

    @property
    def app_file(self) -> str:
        """The file of the app module (shortly:app -> shortly.py)."""
        return self.app.partition(":")[0].replace(".", "/") + ".py"

    def checks_through(self, exercise: Exercise) -> list[str]:
        """Every earlier factor's checks, then the exercise's own: what its solution must pass."""
        return [c for ex in self.before(exercise) for c in ex.checks] + list(exercise.checks)

    def before(self, exercise: Exercise) -> list[Exercise]:
        """The exercises of earlier factors, in order."""
        return [ex for ex in self.exercises if ex.factor < exercise.factor]

    def starting_point(self, exercise: Exercise) -> Path:
        """The app state a notebook starts from: the previous solution, or the legacy app."""
        earlier = self.before(exercise)
        return earlier[-1].solution if earlier else self.legacy


def find_root(start: Path | None = None) -> Path:
    """Locate the course root: $FACTORLAB_COURSE, else upwards from start, else the package's checkout."""
    if os.environ.get("FACTORLAB_COURSE"):
        return Path(os.environ["FACTORLAB_COURSE"]).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CATALOGUE_FILE).is_file():
            return folder
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / CATALOGUE_FILE).is_file():
        return checkout
    raise CatalogueError(f"no {CATALOGUE_FILE} found: run factorlab inside the course folder")


def load(root: Path | None = None) -> Catalogue:
    """Read the catalogue of the course at root (found with find_root when None)."""
    root = root or find_root()
    path = root / CATALOGUE_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogueError(f"cannot read {path}: {exc}") from None
    course = data.get("course", {})
    exercises = tuple(
        Exercise(
            id=item["id"], factor=item["factor"], title=item["title"], summary=item.get("summary", ""),
            url=item.get("url", ""), root=root, minutes=item.get("minutes", 0),
            sin=item.get("sin", ""), fix=item.get("fix", ""),
            checks=tuple(item.get("checks", ())), hints=tuple(item.get("hints", ())),
            runbook=dict(item.get("runbook", {})), starter_tree=item.get("starter", ""),
        )
        for item in data.get("exercise", [])
    )
    return Catalogue(
        root=root, title=course.get("title", "factorlab"), legacy=root / course.get("legacy", "legacy"),
        app=course.get("app", "shortly:app"), exercises=tuple(sorted(exercises, key=lambda e: e.factor)),
    )
