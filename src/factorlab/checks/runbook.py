"""The runbook and the example config tell the truth about the app as it is now.

A learner's fix is not done while OPS.md still tells the operator to do what the sin needed, or leaves out
what the fix brought, and while .env.example leaves out a variable the app reads. Docs are prose, so this
evidence is words: the catalogue (exercises.toml, `runbook` of each exercise) lists what the runbook must
no longer say and what it must say; the variables come from reading the code (`source.environment_reads`).
"""

from __future__ import annotations

import re

from .. import files
from . import CheckContext, CheckFailed
from .source import env_file_names, environment_reads
from .text import listing

RUNBOOK = "OPS.md"
EXAMPLE = ".env.example"


def _text(ctx: CheckContext, name: str) -> str | None:
    """A doc's text without its HTML comments (a TODO note is no documentation), line numbers kept."""
    path = ctx.path / name
    text = files.text_of(path) if path.is_file() else None
    if text is None or not name.endswith(".md"):
        return text
    return re.sub(r"<!--.*?-->", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)


# Where a sentence ends: . ! ? before a space, a blank line, a list item, a table row or a heading.
SENTENCE_END = re.compile(r"[.!?](?=[\s)\"'`]|$)|\n[ \t]*\n|\n[ \t]*(?:[-*+|#]|\d+\.)\s")
CLAUSE_START = re.compile(r"[,;:(\u2014]|\s-\s|\bbut\b")
# Words that put a sentence in the past (how it used to be) ...
PAST_WORDS = re.compile(r"(?i)\b(until|used to|no longer|not any ?more|anymore|previously|formerly|in the past|was|were|"
                        r"gone|removed|deleted|retired|dropped|replaced|abandoned|got rid of)\b")
# ... or deny it, before the words in their clause.
DENIAL_WORDS = re.compile(r"(?i)\b(not|never|no|nothing|nor|neither|don't|doesn't|didn't|won't|isn't|aren't|cannot|"
                          r"can't|stopped)\b")


def in_the_past(text: str, match: re.Match) -> bool:
    """Does the sentence holding a match tell how things were (until March, no longer, used to, gone), or deny
    it (the app does not …, nothing is …) before the matched words in their clause? Then the runbook tells the
    history of a fix, not what an operator must do now."""
    ends = [m.end() for m in SENTENCE_END.finditer(text, 0, match.start())]
    start = ends[-1] if ends else 0
    after = SENTENCE_END.search(text, match.end())
    sentence = text[start:after.start() if after else len(text)]
    if PAST_WORDS.search(sentence):
        return True
    before = text[start:match.start()]
    clauses = [m.end() for m in CLAUSE_START.finditer(before)]
    return bool(DENIAL_WORDS.search(before[clauses[-1] if clauses else 0:]))


def undocumented(ctx: CheckContext, name: str, reads: dict[str, str]) -> list[str]:
    """The variables the app reads that a file does not name: .env.example lists them as NAME=…, the runbook
    anywhere in its words."""
    text = _text(ctx, name)
    if text is None:
        return sorted(reads)
    listed = env_file_names(text) if name == EXAMPLE else set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
    return sorted(set(reads) - listed)


def runbook_truth(ctx: CheckContext, exercise_id: str, *, variables: bool = True) -> str:
    """Check OPS.md (and, with variables, .env.example) against what the app now is; CheckFailed when not."""
    expected = "Expected: the runbook tells the operator the truth about the app as it is now."
    runbook = _text(ctx, RUNBOOK)
    if runbook is None:
        raise CheckFailed(f"Seen: no {RUNBOOK} in the app's folder.\n{expected}")
    said = runbook_entries(ctx, exercise_id)
    for pattern, words in said.get("retired", []):
        found = next((m for m in re.finditer(pattern, runbook) if not in_the_past(runbook, m)), None)
        if found:
            line = runbook.count("\n", 0, found.start()) + 1
            raise CheckFailed(f"Seen: {RUNBOOK}:{line} still says {words}.\n{expected}")
    for pattern, words in said.get("documented", []):
        if not re.search(pattern, runbook):
            raise CheckFailed(f"Seen: {RUNBOOK} never mentions {words}.\n{expected}")
    if not variables:
        return f"{RUNBOOK} says what the app needs now, and nothing it no longer needs"
    reads = environment_reads(ctx.path)
    for name in (EXAMPLE, RUNBOOK):
        missing = undocumented(ctx, name, reads)
        if missing:
            raise CheckFailed(f"Seen: the app reads {listing(missing, 4)} (at {reads.get(missing[0], '?')}), which "
                              f"{name} {'does not exist to list' if _text(ctx, name) is None else 'does not name'}.\n"
                              f"Expected: {name} names every variable the app reads, so an operator knows what to set.")
    return f"{RUNBOOK} and {EXAMPLE} name all {len(reads)} variable(s) the app reads, and {RUNBOOK} is up to date"


def runbook_entries(ctx: CheckContext, exercise_id: str) -> dict:
    if not ctx.catalogue:
        return {}
    return ctx.catalogue.get(exercise_id).runbook
