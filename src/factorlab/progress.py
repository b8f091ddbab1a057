"""The learner's progress: a small JSON file in their checkout (.factorlab/progress.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

NOT_STARTED, FAILING, PASSED = "not started", "failing", "passed"


@dataclass
class Progress:
    """What each exercise's last check said, and how many hints were shown."""

    path: Path
    status: dict[str, str] = field(default_factory=dict)
    hints: dict[str, int] = field(default_factory=dict)
    ever_passed: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, root: Path) -> "Progress":
        path = root / ".factorlab" / "progress.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        return cls(path, dict(data.get("status", {})), dict(data.get("hints", {})), set(data.get("ever_passed", [])))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": 1, "status": self.status, "hints": self.hints,
                                   "ever_passed": sorted(self.ever_passed)}, indent=2))
        tmp.replace(self.path)

    def of(self, exercise_id: str) -> str:
        return self.status.get(exercise_id, NOT_STARTED)

    def record(self, exercise_id: str, passed: bool) -> None:
        self.status[exercise_id] = PASSED if passed else FAILING
        if passed:
            self.ever_passed.add(exercise_id)
        self.save()

    def forget(self, exercise_id: str) -> None:
        """Start an exercise over: no verdict, no hint shown, the solution locked again."""
        self.status.pop(exercise_id, None)
        self.hints.pop(exercise_id, None)
        self.ever_passed.discard(exercise_id)
        self.save()

    def next_hint(self, exercise_id: str, available: int) -> int:
        """Reveal one more hint; return how many are shown now (at most available)."""
        shown = min(self.hints.get(exercise_id, 0) + 1, available)
        self.hints[exercise_id] = shown
        self.save()
        return shown
