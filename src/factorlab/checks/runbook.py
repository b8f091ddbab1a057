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

# Words that put a sentence of a doc in the past: a runbook may tell what is gone ("curl used to come from apt",
# "until March the app picked the production settings", "shortly_prod.py was folded into shortly.py") ...
PAST_WORDS = re.compile(r"(?i)\b(until|used to|no longer|no more|not any ?more|any ?more|previously|formerly|"
                        r"in the past|was|were|had|gone|removed|deleted|dropped|folded|merged|retired|replaced|"
                        r"abandoned|got rid of)\b")
# ... or deny what it names, before the words in their clause ("never make a copy such as shortly_prod.py", "the
# app does not need curl") ...
DENIAL_WORDS = re.compile(r"(?i)\b(not|never|no|nothing|nor|neither|avoid|don'?t|doesn'?t|didn'?t|won'?t|isn'?t|"
                          r"aren'?t|shouldn'?t|cannot|can'?t|stopped)\b")
# ... unless the denial is itself an instruction: "don't forget to install curl".
INSISTS = re.compile(r"(?i)\b(never|don'?t|do not|must not|should not|shouldn'?t)\s+(forget|skip|omit|miss|fail)\b")
CLAUSE_START = re.compile(r"[,;:(\u2014]|\s-\s|\bbut\b")
# Where a sentence ends in Markdown prose: . ! or ? followed by a space, a table cell, and a line that stands alone
# (blank, a heading, a list item, a table row, a code line).
_CLAUSE_END = re.compile(r"[.!?](?=\s|$)|\|")
_LINE_ALONE = re.compile(r"^\s*$|^\s*(#|[-*+] |\d+[.)] |\||```|~~~)|^( {4}|\t)")


def sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """Where the sentence of a doc that holds text[start:end] begins and ends: at the end of the sentence before
    and after it, and at lines that stand alone (a code line, a list item and a table cell are sentences of their
    own)."""
    lines = text.splitlines(keepends=True)
    offsets, at = [], 0
    for line in lines:
        offsets.append(at)
        at += len(line)
    first = max((i for i, o in enumerate(offsets) if o <= start), default=0)
    last = max((i for i, o in enumerate(offsets) if o < max(end, start + 1)), default=0)
    while first > 0 and not _LINE_ALONE.match(lines[first]) and not _LINE_ALONE.match(lines[first - 1]):
        first -= 1  # a paragraph's lines run on into one another
    while last + 1 < len(lines) and not _LINE_ALONE.match(lines[last]) and not _LINE_ALONE.match(lines[last + 1]):
        last += 1
    low, high = offsets[first] if lines else 0, (offsets[last] + len(lines[last])) if lines else len(text)
    before = [m.end() for m in _CLAUSE_END.finditer(text, low, start)]
    after = _CLAUSE_END.search(text, end, high)
    return (before[-1] if before else low), (after.start() if after else high)


def sentence(text: str, start: int, end: int) -> str:
    """The sentence of a doc that holds text[start:end] (see sentence_bounds)."""
    low, high = sentence_bounds(text, start, end)
    return text[low:high]


def said_as_history(text: str, start: int, end: int) -> bool:
    """Does the sentence holding text[start:end] tell how things were (until March, no longer, used to, gone), or
    deny it before those words in their clause (never run a copy such as shortly_prod.py; the app does not …)?
    Then a doc tells the history of a fix, not what an operator must do now."""
    low, high = sentence_bounds(text, start, end)
    if PAST_WORDS.search(text[low:high]):
        return True
    before = INSISTS.sub(" ", text[low:max(low, start)])
    clauses = [m.end() for m in CLAUSE_START.finditer(before)]
    return bool(DENIAL_WORDS.search(before[clauses[-1] if clauses else 0:]))


def in_the_past(text: str, match: re.Match) -> bool:
    """said_as_history for a match of a pattern."""
    return said_as_history(text, match.start(), match.end())


def still_says(text: str, pattern: str) -> re.Match | None:
    """The first place a doc says what pattern matches other than as history (see said_as_history), or None."""
    return next((m for m in re.finditer(pattern, text) if not said_as_history(text, m.start(), m.end())), None)


def _text(ctx: CheckContext, name: str) -> str | None:
    """A doc's text without its HTML comments (a TODO note is no documentation), line numbers kept."""
    path = ctx.path / name
    text = files.text_of(path) if path.is_file() else None
    if text is None or not name.endswith(".md"):
        return text
    return re.sub(r"<!--.*?-->", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)


def undocumented(ctx: CheckContext, name: str, reads: dict[str, str]) -> list[str]:
    """The variables the app reads that a file does not name: .env.example lists them as NAME=…, the runbook
    anywhere in its words."""
    text = _text(ctx, name)
    if text is None:
        return sorted(reads)
    listed = env_file_names(text) if name == EXAMPLE else set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
    return sorted(set(reads) - listed)


def runbook_truth(ctx: CheckContext, exercise_id: str, *, variables: bool = True) -> str:
    """Check OPS.md (and, with variables, .env.example) against what the app now is; CheckFailed when not. A
    retired pattern may still be said in the past or denied (said_as_history)."""
    expected = "Expected: the runbook tells the operator the truth about the app as it is now."
    runbook = _text(ctx, RUNBOOK)
    if runbook is None:
        raise CheckFailed(f"Seen: no {RUNBOOK} in the app's folder.\n{expected}")
    said = runbook_entries(ctx, exercise_id)
    for pattern, words in said.get("retired", []):
        found = still_says(runbook, pattern)
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
