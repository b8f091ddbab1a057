"""Reading a shell script as the commands it runs, for checks of a deploy script (never running it).

Enough of bash for deploy scripts: comments and continuation lines, commands joined by ; && || | &, the
commands inside $(…) and backticks, redirections, simple variables (NAME=value, $NAME, ${NAME}, ${NAME:-x})
and functions (a call runs the function's body, with "$@" its arguments).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

FUNCTION = re.compile(r"^\s*(?:function\s+)?([A-Za-z_][\w-]*)\s*(?:\(\s*\))?\s*\{\s*$")
ONE_LINE_FUNCTION = re.compile(r"^\s*(?:function\s+)?([A-Za-z_][\w-]*)\s*(?:\(\s*\))?\s*\{(.*)\}\s*;?\s*$")
KEYWORDS = {"{", "}", "(", ")", "then", "do", "else", "elif", "fi", "done", "if", "while", "until", "!", "[", "]", "[[",
            "]]", "case", "esac", "in"}
ASSIGNMENT = re.compile(r"^([A-Za-z_]\w*)=(.*)$")
VARIABLE = re.compile(r"\$\{(\w+)(?::?[-=]([^}]*))?\}|\$(\w+)")
WRAPPERS = {"nohup", "exec", "env", "setsid", "nice", "time", "command", "builtin", "stdbuf", "timeout"}


@dataclass
class Command:
    """One simple command: its words (variables expanded), where it is, and the files it redirects into."""

    argv: list[str]
    line: int
    text: str
    writes: list[str] = field(default_factory=list)

    @property
    def words(self) -> list[str]:
        """The words from the program on: past NAME=value pairs and wrappers such as nohup, exec or env."""
        words = list(self.argv)
        while words:
            if ASSIGNMENT.match(words[0]):
                words.pop(0)
            elif words[0] in WRAPPERS:
                words.pop(0)
                while words and (words[0].startswith("-") or re.fullmatch(r"[\d.]+[smhd]?", words[0])):
                    words.pop(0)
            else:
                break
        return words

    @property
    def program(self) -> str:
        """The program run (its file name, without a folder)."""
        words = self.words
        return words[0].rsplit("/", 1)[-1] if words else ""


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) with continuation lines joined."""
    found, pending, start = [], "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        if raw.rstrip().endswith("\\") and not raw.lstrip().startswith("#"):
            pending += raw.rstrip()[:-1] + " "
            continue
        found.append((start, pending + raw))
        pending = ""
    return found


def _closing(line: str, i: int) -> int:
    """The index of the ) that closes the $( opened just before i (quotes and nesting respected)."""
    depth, quote = 1, None
    while i < len(line):
        c = line[i]
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return len(line)


def _split(line: str) -> tuple[list[str], list[str]]:
    """A line's commands (split at ; && || | & outside quotes, comments dropped, substitutions replaced by a
    word), and the bodies of its $(…) and `…` substitutions."""
    parts, subs, buf, quote, i = [], [], [], None, 0
    while i < len(line):
        c = line[i]
        if line.startswith("$(", i) and quote != "'":
            end = _closing(line, i + 2)
            subs.append(line[i + 2:end])
            buf.append("SUBST")
            i = end + 1
            continue
        if c == "`" and quote != "'":
            end = line.find("`", i + 1)
            end = len(line) if end < 0 else end
            subs.append(line[i + 1:end])
            buf.append("SUBST")
            i = end + 1
            continue
        if quote:
            if c == "\\" and quote == '"' and i + 1 < len(line):
                buf.append(line[i:i + 2])
                i += 2
                continue
            quote = None if c == quote else quote
            buf.append(c)
        elif c in "'\"":
            quote = c
            buf.append(c)
        elif c == "#" and (not buf or buf[-1] in " \t;&|("):
            break
        elif c in ";|&" and not (c == "&" and buf and buf[-1] == ">") and not line.startswith("&>", i):
            parts.append("".join(buf))
            buf = []
            i += 2 if line[i:i + 2] in ("&&", "||") else 1
            continue
        else:
            buf.append(c)
        i += 1
    parts.append("".join(buf))
    return [part for part in parts if part.strip()], subs


def _expand(word: str, variables: dict[str, str]) -> str:
    return VARIABLE.sub(lambda m: variables.get(m[1] or m[3], m[2] or ""), word)


def commands(text: str) -> list[Command]:
    """Every simple command of a script, in order, with function calls replaced by the functions' bodies."""
    functions: dict[str, list[tuple[int, str]]] = {}
    body: list[tuple[int, str]] | None = None
    main: list[tuple[int, str]] = []
    depth = 0
    for number, line in _logical_lines(text):
        one_line = ONE_LINE_FUNCTION.match(line)
        if body is None and one_line:
            functions[one_line[1]] = [(number, one_line[2])]
            continue
        start = FUNCTION.match(line)
        if body is None and start:
            body, depth = functions.setdefault(start[1], []), 1
            continue
        if body is not None:
            depth += line.count("{") - line.count("}")
            if depth <= 0:
                body = None
                continue
            body.append((number, line))
            continue
        main.append((number, line))
    return _commands(main, functions, {}, 0)


def _commands(lines: list[tuple[int, str]], functions: dict, variables: dict[str, str], depth: int) -> list[Command]:
    found: list[Command] = []
    for number, line in lines:
        parts, subs = _split(line)
        if subs:
            found += _commands([(number, sub) for sub in subs], functions, variables, depth)
        for part in parts:
            try:
                words = shlex.split(part, comments=False)
            except ValueError:
                words = part.split()
            words = [w for w in words if w not in KEYWORDS]
            if not words:
                continue
            if all(ASSIGNMENT.match(w) for w in words) or words[0] in ("export", "readonly", "local", "declare"):
                for word in words:
                    if ASSIGNMENT.match(word):
                        name, value = ASSIGNMENT.match(word).groups()
                        variables[name] = _expand(value, variables)
                if all(ASSIGNMENT.match(w) for w in words):
                    continue
            expanded, writes, skip = [], [], False
            for index, word in enumerate(words):
                if skip:
                    skip = False
                    continue
                redirect = re.match(r"^(\d?>>?|&>>?)(.*)$", word)
                if redirect:
                    target = redirect[2] or (words[index + 1] if index + 1 < len(words) else "")
                    skip = not redirect[2]
                    if not target.startswith("&"):
                        writes.append(_expand(target, variables))
                    continue
                expanded.append(_expand(word, variables))
            command = Command(expanded, number, part.strip(), writes)
            if command.program in functions and depth < 5:
                arguments = command.words[1:]
                called = [(n, text.replace('"$@"', " ".join(shlex.quote(w) for w in arguments))
                           .replace("$@", " ".join(arguments))) for n, text in functions[command.program]]
                found += _commands(called, functions, dict(variables), depth + 1)
            else:
                found.append(command)
    return found


# -- what a python command runs ----------------------------------------------------------------------------

PYTHON = re.compile(r"python[0-9.]*$")
PYTHON_VALUE_OPTIONS = {"-W", "-X", "--check-hash-based-pycs"}  # options whose value is the next word


@dataclass(frozen=True)
class PythonRun:
    """What `python …` runs: a script (its path), a module (-m name) or code (-c text), and the arguments."""

    kind: str
    target: str
    args: list[str]


def python_run(words: list[str]) -> PythonRun | None:
    """What a command's words run with Python, or None when the program is not Python or runs nothing."""
    if not words or not PYTHON.match(words[0].rsplit("/", 1)[-1]):
        return None
    i = 1
    while i < len(words):
        word = words[i]
        if word in PYTHON_VALUE_OPTIONS:
            i += 2
            continue
        if word.startswith("-") and not word.startswith("--") and word[1:2] not in ("W", "X"):
            at = next((j for j, c in enumerate(word[1:], 1) if c in "mc"), None)  # -m, -c, -um, -mrelease
            if at is not None:
                kind, rest = ("module" if word[at] == "m" else "code"), word[at + 1:]
                if rest:
                    return PythonRun(kind, rest, words[i + 1:])
                return PythonRun(kind, words[i + 1] if i + 1 < len(words) else "", words[i + 2:])
        if word.startswith("-"):
            i += 1
            continue
        return PythonRun("script", word, words[i + 1:])
    return None
