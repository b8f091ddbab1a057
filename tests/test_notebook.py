"""Notebook helpers: stable output, and nothing outlives the kernel."""

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from factorlab import notebook as nb

from conftest import ROOT, our_children


def test_replace_prints_the_change_and_refuses_a_second_run(tmp_path, capsys):
    path = tmp_path / "app.py"
    path.write_text("a = 1\nb = 2\n")
    nb.replace(path, "b = 2", "b = 3")
    assert "-b = 2\n+b = 3" in capsys.readouterr().out
    with pytest.raises(ValueError, match="was the cell run twice"):
        nb.replace(path, "b = 2", "b = 3")


def test_app_output_is_masked_for_stable_notebooks(tmp_path):
    app = object.__new__(nb.App)
    nb._codes.clear()
    text = app.mask('{"code": "aB3dE9", "url": "http://127.0.0.1:43121/x"}\nLocation: /stats/Zz9Yy8\n'
                    'created 2026-11-27T17:59:53Z; 127.0.0.1 - - [27/Nov/2026 17:59:53] "GET /aB3dE9"\n'
                    'http://localhost:5000/aB3dE9')
    assert text == ('{"code": "<code1>", "url": "http://127.0.0.1:<port>/x"}\nLocation: /stats/<code2>\n'
                    'created <time>; 127.0.0.1 - - [<time>] "GET /<code1>"\nhttp://localhost:5000/<code1>')


def test_an_app_dies_with_the_kernel_that_started_it(tmp_path):
    kernel = textwrap.dedent(f"""
        import shutil, sys, time
        from factorlab import notebook as nb
        folder = shutil.copytree({str(ROOT / 'solutions' / '01_codebase')!r}, {str(tmp_path / 'app')!r})
        app = nb.App(folder)
        print("up", flush=True)
        time.sleep(60)
    """)
    with subprocess.Popen([sys.executable, "-c", kernel], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                          env={**os.environ}) as proc:
        try:
            assert proc.stdout.readline().startswith("Shortly is running")
            assert proc.stdout.readline() == "up\n"
            assert our_children()
            proc.send_signal(signal.SIGKILL)  # a kernel that dies gets no chance to clean up
            proc.wait(10)
            deadline = time.monotonic() + 5
            while our_children() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not our_children()
        finally:
            proc.kill()


@pytest.mark.parametrize("how", ["shutdown", "restart"])
def test_a_failing_cell_leaves_nothing_running_once_the_kernel_shuts_down_or_restarts(tmp_path, how, no_leftovers):
    """A real kernel, as JupyterLab runs one: an app, a PostgreSQL and a Redis started, then a cell fails (Run All
    stops there, and the clean-up cell never runs); shutting the kernel down, or restarting it, stops them all."""
    from jupyter_client.manager import start_new_kernel

    from factorlab.process import pid_alive, wait_until

    printed = []
    kernel, client = start_new_kernel(kernel_name="python3", cwd=str(ROOT / "notebooks"))
    try:
        started = client.execute_interactive(textwrap.dedent(f"""
            import shutil
            from factorlab import notebook as nb
            app = nb.App(shutil.copytree({str(ROOT / 'solutions' / '01_codebase')!r}, {str(tmp_path / 'app')!r}))
            database, cache = nb.postgres(), nb.redis()
            print("pids", app.running.process.pid, database.pid, cache.pid)
        """), timeout=120, output_hook=lambda message: printed.append(message["content"].get("text", "")))
        assert started["content"]["status"] == "ok", started["content"]
        pids = [int(word) for word in "".join(printed).split("pids")[1].split()]
        failed = client.execute_interactive("raise RuntimeError('a cell that fails')", timeout=30,
                                            output_hook=lambda message: None)
        assert failed["content"]["status"] == "error"
        assert all(pid_alive(pid) for pid in pids)  # the app, PostgreSQL, Redis
        if how == "restart":
            kernel.restart_kernel(now=False)
            assert kernel.is_alive()
        else:
            kernel.shutdown_kernel(now=False)
        assert wait_until(lambda: not any(pid_alive(pid) for pid in pids) and not our_children(), 15), \
            f"still running: {[pid for pid in pids if pid_alive(pid)] + our_children()}"
    finally:
        client.stop_channels()
        if kernel.is_alive():
            kernel.shutdown_kernel(now=True)


def _button_parts(box):
    import ipywidgets as widgets

    button = next(c for c in box.children if isinstance(c, widgets.Button))
    where = box.children[2]
    return button, where


def test_check_button_says_plainly_when_no_engine_answers(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    solution = nb.course().get("01").solution
    button, where = _button_parts(nb.check_button("01", solution))
    assert "no Docker engine answers here" in where.value and "--runner docker" in where.value
    button.click()
    out = capsys.readouterr().out
    assert f"01_codebase: {len(nb.course().get('01').checks)} passed" in out and "no container needed" not in out


@pytest.mark.docker
def test_check_button_offers_containers_when_an_engine_answers(capsys):
    solution = nb.course().get("01").solution
    button, where = _button_parts(nb.check_button("01", solution))
    assert [value for _, value in where.options] == ["local", "docker"] and where.value == "local"
    where.value = "docker"
    button.click()
    out = capsys.readouterr().out
    assert "Checking solutions/01_codebase in containers" in out
    assert f"01_codebase: {len(nb.course().get('01').checks)} passed" in out and "no container needed" in out


def test_a_browser_shares_its_cookies_across_apps_and_kill_stops_one(tmp_path, capsys, no_leftovers):
    (tmp_path / "shortly.py").write_text(textwrap.dedent("""\
        from flask import Flask, session
        app = Flask(__name__)
        app.secret_key = "not-a-secret"

        @app.get("/")
        def count():
            session["n"] = session.get("n", 0) + 1
            return {"n": session["n"]}
        """))
    first, second = nb.App(tmp_path), nb.App(tmp_path)
    browser = nb.Browser()
    assert [browser.get(app, "/").json()["n"] for app in (first, second, first)] == [1, 2, 3]
    first.kill()
    second.stop()
    assert "Shortly was killed (SIGKILL)" in capsys.readouterr().out


def test_grep_takes_a_folder_or_one_file(tmp_path, capsys):
    (tmp_path / "a.py").write_text("SESSIONS = {}\n")
    nb.grep(tmp_path, "SESSIONS")
    nb.grep(tmp_path / "a.py", "SESSIONS")
    assert capsys.readouterr().out == "a.py:1: SESSIONS = {}\n" * 2


def _half_solve(starter, solution) -> None:
    """A learner midway: every other file of the solution copied over the starter, the app's module cut off in
    the middle of a line being typed, and a .env of their own."""
    names = sorted(p.relative_to(solution) for p in solution.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for name in names[::2]:
        (starter / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(solution / name, starter / name)
    module = starter / "shortly.py"
    text = module.read_text()
    module.write_text(text[:len(text) // 2] + "\ndef purge_expired(\n")
    (starter / ".env").write_text("SHORTLY_SECRET_KEY=mine\nDATABASE_URL=sqlite:///mine.db\n")


def _solve_in_turns(clone: Path) -> None:
    """The exercises of a clone, solved and half done in turns."""
    from factorlab.catalogue import load

    ready = [exercise for exercise in load(clone).exercises if exercise.ready]
    for turn, exercise in enumerate(ready):
        if turn % 2 == 0:
            shutil.rmtree(exercise.starter)
            shutil.copytree(exercise.solution, exercise.starter, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            _half_solve(exercise.starter, exercise.solution)


def _sanitized_outputs(path: Path, rules: list[tuple[re.Pattern, str]]) -> list:
    """A notebook's outputs as nbval compares them: each output's kind and text, the sanitize rules applied, and
    none of a cell marked NBVAL_IGNORE_OUTPUT."""
    import nbformat

    def clean(text: str) -> str:
        for pattern, replacement in rules:
            text = pattern.sub(replacement, text)
        return text

    shown = []
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if re.search(r"^\s*#\s*NBVAL_IGNORE_OUTPUT\s*$", cell.source, re.M):
            continue  # nbval compares nothing of it either: its output is truly variable (the cell says why)
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                shown.append((index, output.name, clean(output.text)))
            elif "data" in output:
                shown.append((index, output.output_type, clean(output.data.get("text/plain", "")),
                              sorted(output.data)))
            else:
                shown.append((index, output.output_type, output.get("ename"), clean(output.get("evalue", ""))))
    return shown


@pytest.mark.slow
@pytest.mark.timeout(1200)  # every notebook built and executed
def test_the_notebooks_rebuilt_with_the_exercises_solved_or_half_done_give_the_committed_outputs(tmp_path):
    """A clone where a learner has done exercises (and is midway through others, with a file that does not even
    parse), then `make notebooks` (the module it runs): every notebook is rebuilt from its source and run, and the
    outputs are the committed ones (nbval's sanitize rules applied, the cells it ignores left out). So the sources
    give the committed notebooks, and their outputs still hold once the exercises are done. The exercises take
    turns, solved and half done: a notebook reads the exercises only through the course's helpers (nb.todos,
    compare_with_starter, the check button, the scorecard), the same for every notebook, so each state meets every
    helper in one run. The course is cloned under the temporary folder, as a classroom machine may have it, which
    the app instances' private /tmp must not hide."""
    import configparser

    clone = tmp_path / "course"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, capture_output=True)
    _solve_in_turns(clone)
    env = {**os.environ, "PYTHONPATH": str(clone / "src")}
    built = subprocess.run([sys.executable, "-m", "factorlab.dev.notebooks"], cwd=clone, env=env,
                           capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    config = configparser.ConfigParser(interpolation=None)
    config.read(clone / "notebooks" / "sanitize.cfg")
    rules = [(re.compile(config[s]["regex"]), config[s]["replace"]) for s in config.sections()]
    rebuilt = sorted((clone / "notebooks").glob("*.ipynb"))
    assert [p.name for p in rebuilt] == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    for path in rebuilt:
        assert f"{path.name}: built from source/" in built.stdout
        assert _sanitized_outputs(path, rules) == _sanitized_outputs(ROOT / "notebooks" / path.name, rules), \
            f"{path.name}: its source no longer gives the committed outputs: run `make notebooks` and commit"
    # nbval over the rebuilt notebooks would replay what the run of `make test` replays already: the committed
    # notebooks (with the exercises as shipped), whose outputs these equal.
