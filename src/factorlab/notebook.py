"""Helpers the notebooks call: workspaces, file edits, a running app, checkpoints, buttons and quizzes.

Everything here prints stable text (no ports, pids, temporary paths or random codes),
so executed notebooks give the same outputs on every run.
"""

from __future__ import annotations

import atexit
import difflib
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

from . import catalogue as cat
from . import services, starters
from .checks import run_exercise
from .process import run_tagged
from .progress import Progress
from .results import CELL, FAILED, NO_MATH, PASSED, PLANNED, Report, badge
from .files import copy_app
from .files import ignore as IGNORED  # noqa: F401  (a notebook copies with shutil.copytree(..., ignore=nb.IGNORED))
from .http import Client
from .runners import AppFailed  # noqa: F401  (notebooks catch nb.AppFailed)
from .testpage import TestPage
from .runners.local import LocalRunner, RunningApp

_course: cat.Catalogue | None = None


def course() -> cat.Catalogue:
    global _course
    if _course is None:
        _course = cat.load()
    return _course


def rel(path: Path) -> str:
    """A path as the learner sees it: relative to the course root."""
    try:
        return Path(path).resolve().relative_to(course().root).as_posix()
    except ValueError:
        return Path(path).name


# --- workspaces and files -------------------------------------------------------------------

def workspace(key: str) -> Path:
    """Make a fresh copy of the app state this notebook starts from, under workspace/ID."""
    exercise = course().get(key)
    return _fresh_workspace(course().starting_point(exercise), exercise.id)


def _fresh_workspace(source: Path, name: str, said: str = "") -> Path:
    """Stop what the notebook ran, and copy source to workspace/name afresh (saying so, and `said`)."""
    dest = course().root / "workspace" / name
    stop_all()
    _codes.clear()
    shutil.rmtree(dest, ignore_errors=True)
    copy_app(source, dest)
    print(f"Fresh workspace {rel(dest)}, a copy of {rel(source)}{said}")
    return dest


def _without_todos(text: str) -> list[str]:
    """The lines of a text without its TODO notes (# TODO: ... and its indented follow-ups, <!-- TODO: ... -->)
    and without blank lines."""
    text = re.sub(r"(?s)<!-- TODO:.*?-->", "", text)
    text = re.sub(r"[ \t]*# TODO:.*(\n[ \t]*#   .*)*", "", text)
    return [line for line in text.splitlines() if line.strip()]


def compare_with_starter(folder: Path, key: str) -> None:
    """Say whether a workspace is the exercise's starter as the course ships it, TODO notes aside (whatever has
    been done to exercises/ID since), and which files differ if not."""
    exercise = course().get(key)
    shipped = starters.shipped_texts(course(), exercise)
    differ = [name for name, text in shipped.items()
              if not (Path(folder) / name).is_file()
              or _without_todos((Path(folder) / name).read_text(errors="replace")) != _without_todos(text)]
    if differ:
        print(f"the workspace differs from {rel(exercise.starter)} as shipped in: {', '.join(differ)}")
    else:
        print(f"the workspace now matches {rel(exercise.starter)} as the course ships it (apart from its TODO notes)")


def files(folder: Path) -> None:
    """List a folder's files, as `ls -a` would, without tool folders."""
    for path in sorted(Path(folder).iterdir()):
        if path.name not in (".git", "__pycache__"):
            print(path.name + ("/" if path.is_dir() else ""))


def show(path: Path, start: int = 1, end: int | None = None) -> None:
    """Print lines start..end of a file with their numbers."""
    lines = Path(path).read_text().splitlines()
    end = end or len(lines)
    for number in range(start, min(end, len(lines)) + 1):
        print(f"{number:>4}  {lines[number - 1]}")


def grep(folder: Path, pattern: str) -> None:
    """Print file:line: text for every line under folder (or in one file) that matches a regular expression."""
    folder = Path(folder)
    paths = [folder] if folder.is_file() else sorted(folder.rglob("*"))
    root = folder.parent if folder.is_file() else folder
    texts = {}
    for path in paths:
        if path.is_file() and ".git" not in path.parts and "__pycache__" not in path.parts:
            try:
                texts[path.relative_to(root).as_posix()] = path.read_text()
            except (UnicodeDecodeError, OSError):
                continue
    _print_matches(texts, pattern)


def todos(key: str) -> None:
    """Print the TODO notes of an exercise's starter as the course ships it (file:line: text), whatever has been
    done to exercises/ID since."""
    _print_matches(starters.shipped_texts(course(), course().get(key)), r"TODO")


def _print_matches(texts: dict[str, str], pattern: str) -> None:
    regex = re.compile(pattern)
    for name, text in texts.items():
        for number, line in enumerate(text.splitlines(), 1):
            if regex.search(line):
                print(f"{name}:{number}: {line.strip()}")


def diff(old: Path, new: Path, context: int = 2) -> None:
    """Print a unified diff between two files."""
    a, b = Path(old), Path(new)
    lines = difflib.unified_diff(a.read_text().splitlines(), b.read_text().splitlines(),
                                 a.name if a.name != b.name else f"a/{a.name}",
                                 b.name if a.name != b.name else f"b/{b.name}", n=context, lineterm="")
    print("\n".join(lines) or "(no differences)")


def replace(path: Path, old: str, new: str) -> None:
    """Replace one exact passage of a file and print the change as a diff."""
    path = Path(path)
    text = path.read_text()
    if text.count(old) != 1:
        found = "not found" if old not in text else f"found {text.count(old)} times"
        raise ValueError(f"the passage to replace was {found} in {path.name}: was the cell run twice?")
    updated = text.replace(old, new)
    path.write_text(updated)
    change = difflib.unified_diff(text.splitlines(), updated.splitlines(), path.name, path.name, n=1, lineterm="")
    print("\n".join(list(change)[2:]))


def write(path: Path, text: str) -> None:
    """Write a whole file and say so."""
    path = Path(path)
    path.write_text(text)
    print(f"wrote {path.name} ({len(text.splitlines())} lines)")


def bars(title: str, names: list[str], series: dict[str, list[float]]):
    """A figure of bar charts side by side, one per series (its label: the values, one per name), each bar
    labelled with its value."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(series), figsize=(4.2 * len(series), 3.4), squeeze=False)
    for axis, (label, values) in zip(axes[0], series.items()):
        shown = axis.bar(names, values, color=["#c0504d", "#4f81bd", "#9bbb59", "#8064a2"][:len(names)])
        axis.bar_label(shown, fmt="%.2f")
        axis.set_title(label, fontsize=10)
        axis.margins(y=0.2)
    figure.suptitle(title)
    figure.tight_layout()
    plt.show()


def per_second(title: str, runs: dict[str, list[tuple[float, bool]]], marks: dict[str, list[float]]):
    """A figure of one panel per run: requests answered per second over time (a line), failed requests (red
    crosses along the bottom, one per second that had any) and the moments in marks (dotted lines)."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(runs), figsize=(4.6 * len(runs), 3.2), squeeze=False, sharey=True)
    for axis, (name, results) in zip(axes[0], runs.items()):
        end = int(max((t for t, _ in results), default=0))  # whole seconds only: the last one is cut short
        good = [sum(1 for t, ok in results if ok and int(t) == second) for second in range(end)]
        bad = sorted({int(t) for t, ok in results if not ok and int(t) < end})
        axis.plot(range(end), good, color="#4f81bd", label="answered")
        axis.plot(bad, [0] * len(bad), "x", color="#c0504d", markersize=9, label="failed")
        for moment in marks.get(name, []):
            axis.axvline(moment, linestyle=":", color="grey")
        axis.set_title(name, fontsize=10)
        axis.set_xlabel("seconds")
    axes[0][0].set_ylabel("requests answered per second")
    axes[0][0].legend(loc="lower left", fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    plt.show()


def per_minute(title: str, minutes: list[str], series: dict[str, list[int]]):
    """A figure of counts per minute (one bar per minute and series, side by side), e.g. requests and errors
    read from a log stream; minutes are the labels (09:00, 09:01, …)."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 3.2))
    width = 0.8 / max(1, len(series))
    for n, (label, counts) in enumerate(series.items()):
        axis.bar([i + n * width for i in range(len(minutes))], counts, width,
                 color=["#4f81bd", "#c0504d", "#9bbb59"][n % 3], label=label)
    axis.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(minutes))], minutes, fontsize=8)
    axis.set_ylabel("events per minute")
    axis.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    plt.show()


def wait_for(condition, timeout: float) -> bool:
    """Wait until condition() is true (checked every 0.1 s), at most timeout seconds: whether it came true."""
    from .process import wait_until

    if wait_until(condition, timeout, every=0.1):
        return True
    print(f"(still not so after {timeout:g} s)")
    return False


def delete(path: Path) -> None:
    Path(path).unlink()
    print(f"deleted {Path(path).name}")


def sh(command: str, cwd: Path, timeout: float = 120) -> int:
    """Run a shell command in cwd, print what it printed, and return its exit code."""
    try:
        done = subprocess.run(command, shell=True, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"(stopped after {timeout:g} s)")
        return 124
    output = (done.stdout + done.stderr).rstrip()
    if output:
        print(output)
    return done.returncode


# --- a running app ----------------------------------------------------------------------------

_running: list["App"] = []
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?|\d\d/\w{3}/\d{4} \d\d:\d\d:\d\d")
CODE_SEEN = re.compile(r'"code":\s*"(\w+)"|/stats/(\w+)|^\s+"(\w{6})",?$', re.M)
_codes: dict[str, str] = {}  # link codes are random: each gets a stable name, shared by every app
PORT = re.compile(r"(127\.0\.0\.1|localhost):(\d{4,5})")


def mask(text: str) -> str:
    """Replace what changes between runs (ports, times, random codes) with stable names."""
    for match in CODE_SEEN.finditer(text):
        code = next(group for group in match.groups() if group)
        _codes.setdefault(code, f"<code{len(_codes) + 1}>")
    for code, name in _codes.items():
        text = re.sub(rf"\b{re.escape(code)}\b", name, text)
    text = TIMESTAMP.sub("<time>", text)
    return PORT.sub(lambda m: m.group(0) if m.group(2) == "5000" else f"{m.group(1)}:<port>", text)


class Response:
    """An HTTP response that prints as stable text: status, a few headers, the body."""

    def __init__(self, raw, app: "App"):
        self.raw, self.status_code, self.app = raw, raw.status_code, app

    def json(self):
        return self.raw.json()

    @property
    def text(self) -> str:
        return self.raw.text

    def __repr__(self) -> str:
        lines = [f"HTTP {self.status_code}"]
        if "Location" in self.raw.headers:
            lines.append(f"Location: {self.raw.headers['Location']}")
        kind = self.raw.headers.get("Content-Type", "")
        if 300 <= self.status_code < 400:
            pass
        elif "json" in kind:
            lines.append(json.dumps(self.raw.json(), indent=2))
        elif "html" in kind:
            text = re.sub(r"(?s)<(style|script).*?</\1>", " ", self.raw.text)
            text = html.unescape(re.sub(r"<[^>]+>", "\n", text))
            lines.extend(line.strip() for line in text.splitlines() if line.strip())
        elif self.raw.text:
            lines.append(self.raw.text.strip())
        return self.app.mask("\n".join(lines))


# Seconds a notebook's request waits for its answer: a server that has just opened its port may still be loading
# the app (gunicorn's worker imports it after the port is open), which takes seconds on a busy machine.
ANSWER_WAIT = 60.0


class App:
    """Shortly running from a folder in place (not a copy), stopped by stop() or when the kernel goes."""

    def __init__(self, folder: Path, env: dict[str, str] | None = None, *, process_type: str | None = None):
        """process_type: start that line of the folder's Procfile (e.g. "web") as a platform would, with $PORT,
        in an environment built from its requirements.txt alone; otherwise the way the checks start an app. A
        process type other than web serves nothing: it is only started."""
        self.folder = Path(folder)
        self.runner = LocalRunner(self.folder, course().app)
        serves = process_type in (None, "web")
        try:
            self.running: RunningApp = self.runner.start(env or {}, workspace=self.folder, process_type=process_type,
                                                         listens=serves)
        except Exception:
            self.runner.close()
            raise
        _running.append(self)
        self.name = f"the {process_type} process of {rel(self.folder)}" if process_type else "Shortly"
        print(f"{self.name} is {'serving' if serves else 'running'}" if process_type else
              f"Shortly is running from {rel(self.folder)}")

    @property
    def port(self) -> int:
        return self.running.port

    def mask(self, text: str) -> str:
        return mask(text)

    def get(self, path: str, **kwargs) -> Response:
        kwargs.setdefault("timeout", ANSWER_WAIT)
        return Response(self.running.get(path, **kwargs), self)

    def post(self, path: str, **kwargs) -> Response:
        kwargs.setdefault("timeout", ANSWER_WAIT)
        return Response(self.running.post(path, **kwargs), self)

    def logs(self) -> None:
        print(self.mask(self.running.output()))

    def kill(self) -> None:
        """Kill the app outright (SIGKILL), as a crash or the out-of-memory killer would: no clean-up runs."""
        if self in _running:
            self.running.kill()
            self.runner.close()
            _running.remove(self)
            print(f"{self.name} was killed (SIGKILL)")

    def terminate(self, wait: float = 15.0) -> int | None:
        """Stop the app as a process manager does: SIGTERM to every process of it, then up to `wait` seconds for
        it to exit by itself (after that it is killed). Its exit code, or None when it had to be killed."""
        if self not in _running:
            return None
        self.running.terminate()
        code = self.running.exited(wait)
        self.runner.close()
        _running.remove(self)
        print(f"{self.name} got SIGTERM and " + (f"exited with code {code}" if code is not None
                                                 else f"was still running {wait:g} s later, so it was killed"))
        return code

    def stop(self) -> None:
        if self in _running:
            self.runner.close()
            _running.remove(self)
            print(f"{self.name} stopped")

    def __enter__(self) -> "App":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class Browser:
    """One user with one cookie jar, talking to any of several running apps (cookies go by host, not by port,
    so every app on 127.0.0.1 sees the same session cookie, as behind a load balancer)."""

    def __init__(self):
        self.client = Client()

    def get(self, app: App, path: str, **kwargs) -> Response:
        return Response(self.client.get(app.running, path, **kwargs), app)

    def post(self, app: App, path: str, **kwargs) -> Response:
        return Response(self.client.post(app.running, path, **kwargs), app)


def slow_page(seconds: float, title: str = "a slow page") -> TestPage:
    """A web page on this machine that takes `seconds` to answer, as a slow or far-away site does (stopped by
    stop_all). page.url(path) is its address; page.requests lists who asked."""
    page = TestPage(title, delay=seconds).__enter__()
    _pages.append(page)
    print(f"a page that takes {seconds:g} s to answer is at http://127.0.0.1:<its port>/")
    return page


_pages: list[TestPage] = []


def stop_all() -> None:
    """Stop every app, capstone system, slow page and backing service a notebook started (also runs when the
    kernel exits)."""
    from . import capstone

    capstone.stop_all()
    for app in list(_running):
        app.stop()
    for page in list(_pages):
        page.__exit__(None, None, None)
        _pages.remove(page)
    for server in list(_servers):
        stop(server)


# --- backing services -------------------------------------------------------------------------

_servers: list[services.Server] = []
_KIND = {"postgres": "PostgreSQL", "redis": "Redis"}


def postgres() -> services.Postgres:
    """Start a private PostgreSQL server for this notebook (stopped by stop_all, or with the kernel)."""
    server = services.Postgres.start()
    _servers.append(server)
    print(f"PostgreSQL is running: DATABASE_URL={mask(server.url())}")
    return server


def redis() -> services.Redis:
    """Start a private Redis server for this notebook (stopped by stop_all, or with the kernel)."""
    server = services.Redis.start()
    _servers.append(server)
    print(f"Redis is running: REDIS_URL={mask(server.url())}")
    return server


def stop(server: services.Server) -> None:
    """Stop a server this notebook started; its data goes with it."""
    if server in _servers:
        server.stop()
        _servers.remove(server)
        print(f"{_KIND[server.kind]} stopped (its data is gone)")


def rows(url: str, query: str) -> None:
    """Run a query in the database a DATABASE_URL names (SQLite or one of this notebook's PostgreSQL servers)
    and print the rows, with random codes and times masked."""
    if url.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(f"file:{url[len('sqlite:///'):]}?mode=ro", uri=True) as conn:
            cursor = conn.execute(query)
            header, found = [d[0] for d in cursor.description], cursor.fetchall()
    else:
        port = int(PORT.search(url).group(2))
        server = next(s for s in _servers if s.kind == "postgres" and s.port == port)
        conn = server.connect(url.rsplit("/", 1)[1])
        try:
            cursor = conn.cursor()
            cursor.execute(query)
            header, found = [d[0] for d in cursor.description], cursor.fetchall()
        finally:
            conn.close()
    if "code" in header:  # link codes are random: give each a stable name
        for row in found:
            code = str(row[header.index("code")])
            _codes.setdefault(code, f"<code{len(_codes) + 1}>")
    print(mask(" | ".join(header)))
    for row in found:
        print(mask(" | ".join(str(value) for value in row)))
    print(f"({len(found)} row{'s' if len(found) != 1 else ''})")


atexit.register(stop_all)


# --- checks, buttons, quizzes ----------------------------------------------------------------

def checkpoint(key: str, path: Path, *, cumulative: bool = False, runner: str = "local") -> Report:
    """Run an exercise's checks on a folder and return the report (shown as a table); progress is untouched."""
    exercise = course().get(key)
    ids = course().checks_through(exercise) if cumulative else None
    report = run_exercise(exercise, Path(path), course(), check_ids=ids, runner=runner)
    report.path = rel(path)
    return report


NO_ENGINE = ("<i>Container checks: no Docker engine answers here (Binder and JupyterHub have none), so the "
             "button checks with the local runner. On a machine with Docker, run "
             "<code>factorlab check {id} --runner docker</code> in a terminal.</i>")


def check_button(key: str, path: Path | None = None):
    """A "Check my work" button that runs the exercise's check and shows the result table.

    Where a Docker engine answers, it also offers to run the check in containers; where none does
    (Binder, a hub), it says so."""
    import ipywidgets as widgets
    from IPython.display import display

    from .docker import engine_available
    from .runners import RunnerUnavailable

    exercise = course().get(key)
    folder = Path(path) if path else exercise.starter
    button = widgets.Button(description="Check my work", icon="check", button_style="primary")
    out = widgets.Output()
    if engine_available():
        where = widgets.ToggleButtons(options=[("here (local)", "local"), ("in containers (docker)", "docker")],
                                      value="local", description="Run the app:",
                                      style={"description_width": "auto", "button_width": "auto"})
    else:
        where = widgets.HTML(NO_ENGINE.format(id=html.escape(exercise.id[:2])))

    def on_click(_):
        out.clear_output()
        runner = getattr(where, "value", "local") if isinstance(where, widgets.ToggleButtons) else "local"
        with out:
            print(f"Checking {rel(folder)}" + (" in containers" if runner == "docker" else "") + " …")
            try:
                report = checkpoint(exercise.id, folder, runner=runner)
            except RunnerUnavailable as exc:
                out.clear_output()
                print(f"factorlab: {exc}")
                return
            if folder.resolve() == exercise.starter.resolve():  # progress counts the exercise folder only
                Progress.load(course().root).record(exercise.id, report.passed)
            out.clear_output()
            display(report)

    button.on_click(on_click)
    return _panel([widgets.HTML(f"<b>{html.escape(exercise.title)}</b>: checks {html.escape(rel(folder))}"),
                   button, where, out],
                  f"[Check my work: {exercise.title}, {rel(folder)}] Run this cell to get the button.")


def quiz(question: str, options: list[str], answer: int, why: str):
    """A multiple-choice question that says whether the choice is right, and why."""
    import ipywidgets as widgets

    choice = widgets.RadioButtons(options=options, value=None, layout={"width": "max-content"})
    feedback = widgets.HTML()

    def on_change(change):
        right = change["new"] == options[answer]
        feedback.value = ("✅ Right. " if right else "❌ Not quite. ") + html.escape(why if right else
                                                                              "Think again, or pick another.")

    choice.observe(on_change, names="value")
    return _panel([widgets.HTML(f"<b>{html.escape(question)}</b>"), choice, feedback],
                  f"[Quiz, run this cell to answer it] {question}")


PLAIN_WIDTH = 110  # ipywidgets cuts a widget's plain text at 110 characters; _panel cuts at a word instead


def _panel(children: list, plain: str):
    """A column of widgets whose plain text, what a notebook shows where its widgets are not live yet (opened,
    not run), says what it is and what to do: rather than ipywidgets' `VBox(children=(HTML(value=…`."""
    import ipywidgets as widgets

    if len(plain) > PLAIN_WIDTH:
        plain = plain[:PLAIN_WIDTH - 1].rsplit(" ", 1)[0] + "…"

    class Panel(widgets.VBox):
        def __repr__(self) -> str:
            return plain

    return Panel(children)


def scorecard(folder: Path | None = None):
    """The twelve factors as a table: the sin, the fix, and what the checks say about folder (default: legacy)."""
    from IPython.display import HTML

    import tempfile

    if folder is None:  # a copy outside any repository: the legacy app has no version control of its own
        tmp = tempfile.mkdtemp(prefix=run_tagged("factorlab-legacy-"))
        folder = copy_app(course().legacy, Path(tmp) / "legacy")
    from . import scorecard as card

    _, scores = card.score(folder, course())  # every ready check in one run, as `factorlab check all`
    verdicts = {s.exercise.id: badge(s.verdict(), PASSED if s.passed else FAILED) for s in scores}
    rows = []
    for ex in course().exercises:
        verdict = verdicts.get(ex.id, badge("coming soon", PLANNED))
        cells = [str(ex.factor), f"<a href='{html.escape(ex.url)}'>{html.escape(ex.title)}</a>",
                 html.escape(ex.sin), html.escape(ex.fix), verdict]
        rows.append("<tr>" + "".join(f"<td {CELL}>{text}</td>" for text in cells) + "</tr>")
    if str(folder).startswith(tempfile.gettempdir()):
        shutil.rmtree(folder.parent, ignore_errors=True)
    head = "".join(f"<th {CELL}>{name}</th>" for name in
                   ("#", "factor", "the sin in the legacy app", "the fix you will make", "checks today"))
    return HTML(f"<table class='{NO_MATH}'><thead><tr>{head}</tr></thead><tbody>"
                + "".join(rows) + "</tbody></table>")


# --- the capstone ----------------------------------------------------------------------------------------------

CAPSTONE = "13_capstone"


def capstone_source() -> Path:
    """The folder the capstone runs: your exercises/12 once its check passed, else the reference solution."""
    from .scorecard import last_ready

    last = last_ready(course())
    return last.starter if Progress.load(course().root).of(last.id) == "passed" else last.solution


def capstone_workspace() -> Path:
    """A fresh copy of the app the capstone runs, under workspace/13_capstone: your exercises/12 once its check
    passed (`factorlab check 12`, or the button of notebook 12), else the reference solution."""
    from .scorecard import last_ready

    last = last_ready(course())
    source = capstone_source()
    return _fresh_workspace(source, CAPSTONE, ": your app, whose check passed" if source == last.starter else
                            f": the reference solution (your {rel(last.starter)} runs here once `factorlab check "
                            f"{last.number}` passes)")


def scorecard_table(folder: Path, caption: str = ""):
    """Every factor's checks on folder, in one go (what `factorlab check all --path` runs), as a table that
    names each check that does not pass."""
    from IPython.display import HTML

    from . import scorecard as card

    _, scores = card.score(Path(folder), course())
    return HTML(card.to_html(scores, caption or rel(folder)))


def score_button(path: Path | None = None):
    """A "Score my app" button: every factor's checks on your last exercise folder, shown as a scorecard."""
    import ipywidgets as widgets
    from IPython.display import HTML, display

    from . import scorecard as card

    last = card.last_ready(course())
    folder = Path(path) if path else last.starter
    button = widgets.Button(description="Score my app", icon="check", button_style="primary")
    out = widgets.Output()

    def on_click(_):
        out.clear_output()
        with out:
            print(f"Running every factor's checks on {rel(folder)} …")
            report, scores = card.score(folder, course())
            if folder.resolve() == last.starter.resolve():  # progress counts the exercise folder only
                Progress.load(course().root).record(last.id, report.passed)
            out.clear_output()
            display(HTML(card.to_html(scores, rel(folder))))

    button.on_click(on_click)
    return _panel([widgets.HTML(f"<b>Every factor</b>: checks {html.escape(rel(folder))}"), button, out],
                  f"[Score my app: every factor, {rel(folder)}] Run this cell to get the button.")



def capstone_figure(figures: dict):
    """The capstone's run in two panels: requests answered per second through the router (failures as red
    crosses, each disruption a dotted line), and which release answered `/api/release`, per second."""
    import matplotlib.pyplot as plt

    timeline, steps, releases = figures["timeline"], figures["steps"], figures["release_timeline"]
    end = int(max((t for t, _ in timeline), default=0))
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6), sharex=True)
    good = [sum(1 for t, ok in timeline if ok and int(t) == second) for second in range(end)]
    bad = sorted({int(t) for t, ok in timeline if not ok and int(t) < end})
    left.plot(range(end), good, color="#4f81bd", label="answered")
    left.plot(bad, [0] * len(bad), "x", color="#c0504d", markersize=9, label="failed")
    left.set_title(f"{figures['served']} requests answered, {figures['failed']} failed", fontsize=10)
    left.set_ylabel("requests per second")
    left.set_ylim(bottom=0)
    for name in sorted({r for _, r in releases}):
        right.plot(range(end), [sum(1 for t, r in releases if r == name and int(t) == second) for second in range(end)],
                   label=f"answered by {name}")
    right.set_title("which release answered", fontsize=10)
    for axis in (left, right):
        axis.set_xlabel("seconds")
        for moment, what in steps:
            axis.axvline(moment, linestyle=":", color="grey")
            axis.annotate(what, (moment, 1), xycoords=("data", "axes fraction"), rotation=90, fontsize=7,
                          va="top", ha="right", color="grey")
        axis.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    plt.show()
