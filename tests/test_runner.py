"""The local runner and the check loop, on the tiny fake course."""

import pathlib
import re
import time

import pytest

from factorlab import checks
from factorlab.checks import CheckFailed, check, run_check
from factorlab.process import port_open, wait_until
from factorlab.runners import AppFailed
from factorlab.runners.local import LocalRunner, LocalSession


def test_serves_the_app_from_a_copy_and_stops_it(fake_course, no_leftovers):
    source = fake_course.get("03").solution
    with LocalRunner(source, fake_course.app) as runner:
        app = runner.start({"SHORTLY_SECRET_KEY": "k", "SHORTLY_GREETING": "hi"})
        assert app.get("/").text == "tiny hi"
        assert app.workspace != source and (app.workspace / "tiny.py").exists()
        port = app.port
    assert not port_open(port)
    assert not app.workspace.exists()


def test_the_callers_environment_does_not_leak_into_the_app(fake_course, monkeypatch, no_leftovers):
    monkeypatch.setenv("SHORTLY_SECRET_KEY", "from-my-shell")
    with LocalRunner(fake_course.get("03").solution, fake_course.app) as runner:
        code, output, serving = runner.run_to_exit({})
    assert (code, serving) == (1, False) and "SHORTLY_SECRET_KEY" in output


def test_an_app_that_exits_reports_its_last_words(fake_course, no_leftovers):
    with LocalRunner(fake_course.get("03").solution, fake_course.app) as runner:
        with pytest.raises(AppFailed, match=r"exited with code 1(.|\n)*SHORTLY_SECRET_KEY"):
            runner.start({})


def test_a_check_that_outlives_its_time_limit_fails_and_its_app_stops(fake_course, no_leftovers):
    @check("fake.slow", factor=3, title="slow", hint="be quicker", timeout=1.0)
    def slow(ctx):
        ctx.runner.start({"SHORTLY_SECRET_KEY": "k"})
        time.sleep(30)

    try:
        started = time.monotonic()
        result = run_check(checks.REGISTRY["fake.slow"], fake_course.get("03").solution, LocalSession(fake_course.app))
        assert time.monotonic() - started < 8
        assert result.status == "failed" and "did not finish within 1 s" in result.message
    finally:
        del checks.REGISTRY["fake.slow"]


@pytest.mark.parametrize("raised, status", [(CheckFailed("nope"), "failed"), (AppFailed("gone"), "failed"),
                                            (KeyError("bug"), "error")])
def test_exceptions_become_results_never_tracebacks(fake_course, raised, status):
    @check("fake.raises", factor=3, title="raises", hint="")
    def raises(ctx):
        raise raised

    try:
        result = run_check(checks.REGISTRY["fake.raises"], fake_course.root, LocalSession())
        assert result.status == status
    finally:
        del checks.REGISTRY["fake.raises"]


def test_a_check_id_cannot_be_registered_twice():
    checks.get("config.fails_fast")
    with pytest.raises(ValueError, match="defined twice"):
        check("config.fails_fast", factor=3, title="again", hint="")(lambda ctx: "")


@pytest.mark.parametrize("exercise, folder, passed", [
    ("01", "starter", False), ("01", "solution", True), ("03", "starter", False), ("03", "solution", True)])
def test_fake_course_starters_fail_and_solutions_pass(fake_course, exercise, folder, passed, no_leftovers):
    ex = fake_course.get(exercise)
    report = checks.run_exercise(ex, getattr(ex, folder), fake_course)
    assert report.passed is passed, report.to_text()


WRITES_INTO_ITS_FOLDER = ("import pathlib\npathlib.Path('written.txt').write_text('x')\n"
                          "from flask import Flask\napp = Flask(__name__)\n")


def test_code_changes_lists_what_the_app_wrote_into_its_folder(tmp_path, no_leftovers):

    (tmp_path / "shortly.py").write_text(WRITES_INTO_ITS_FOLDER)
    with LocalRunner(tmp_path) as runner:
        app = runner.start({})
        app.stop()
        assert app.code_changes() == ["written.txt"]


def test_kill_ends_the_app_without_its_clean_up(tmp_path, no_leftovers):

    (tmp_path / "shortly.py").write_text("import atexit, pathlib\n"
                                         "atexit.register(lambda: pathlib.Path('clean-up-ran').touch())\n"
                                         "from flask import Flask\napp = Flask(__name__)\n")
    with LocalRunner(tmp_path) as runner:
        app = runner.start({})
        app.kill()
        assert app.process.poll() == -9
        assert not (app.workspace / "clean-up-ran").exists()


# An app that leaves a file in /tmp and says which files it found there.
LEAVES_A_FILE_IN_TMP = ("import os, pathlib\nfrom flask import Flask\napp = Flask(__name__)\n"
                        "@app.get('/')\ndef home():\n"
                        "    seen = sorted(p.name for p in pathlib.Path('/tmp').glob('factorlab-probe-*'))\n"
                        "    pathlib.Path(f'/tmp/factorlab-probe-{os.getpid()}').touch()\n"
                        "    return ' '.join(seen) or 'nothing'\n")


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_instances_do_not_share_tmp_and_an_app_kept_in_tmp_still_runs_alone(tmp_path, warm, no_leftovers):
    from factorlab.runners import isolation

    (tmp_path / "shortly.py").write_text(LEAVES_A_FILE_IN_TMP)
    session = LocalSession()
    session.prepare(tmp_path) if warm else None
    try:
        with session.runner(tmp_path) as runner:
            first, second = runner.start({}), runner.start({})
            assert first.get("/").text == "nothing"
            if isolation.prefix(first.workspace) is None:
                pytest.skip("this machine cannot give processes a /tmp of their own")
            assert second.get("/").text == "nothing" and not runner.notes
            assert not list(pathlib.Path("/tmp").glob("factorlab-probe-*"))
            # an app whose own folder is under /tmp sees that folder, and still no other file of /tmp
            app = runner.start({}, workspace=tmp_path)
            assert app.get("/").text == "nothing" and not runner.notes
            assert app.get("/").text.startswith("factorlab-probe-")  # its own file, in its own /tmp
    finally:
        session.close()
        for left in pathlib.Path("/tmp").glob("factorlab-probe-*"):
            left.unlink()


# An app that leaves a file in a folder of /var/cache and says which files it found there.
LEAVES_A_FILE_IN_VAR = ("import os, pathlib\nfrom flask import Flask\napp = Flask(__name__)\n"
                        "@app.get('/')\ndef home():\n"
                        "    folder = pathlib.Path('/var/cache/factorlab-probe')\n"
                        "    try:\n"
                        "        folder.mkdir(exist_ok=True)\n"
                        "        (folder / str(os.getpid())).touch()\n"
                        "    except OSError:\n"
                        "        return 'unwritable'\n"
                        "    return ' '.join(sorted(p.name for p in folder.iterdir()))\n")


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_instances_write_to_a_var_of_their_own(tmp_path, warm, no_leftovers):
    from factorlab.runners import isolation

    (tmp_path / "shortly.py").write_text(LEAVES_A_FILE_IN_VAR)
    session = LocalSession()
    session.prepare(tmp_path) if warm else None
    try:
        with session.runner(tmp_path) as runner:
            first, second = runner.start({}), runner.start({})
            if isolation.prefix(first.workspace) is None or "/var" not in isolation.data_folders(isolation.needed(first.workspace)):
                pytest.skip("this machine cannot give processes a /var of their own")
            seen = [app.get("/").text for app in (first, second)]
            if "unwritable" in seen:
                pytest.skip("only root writes to /var/cache, on this machine as on any other")
            assert all(len(files.split()) == 1 for files in seen) and seen[0] != seen[1]
            assert not pathlib.Path("/var/cache/factorlab-probe").exists()
    finally:
        session.close()


def test_the_warm_python_reports_each_exit_however_quick(tmp_path, no_leftovers):
    from factorlab.runners import warm

    warm.hold()
    try:
        assert warm.available()
        for n in range(40):  # the server's "pid" and "exit" lines often arrive in one piece
            proc = warm.WarmProcess.start(["-c", f"print({n}); raise SystemExit({n % 4})"], cwd=str(tmp_path),
                                          env={"PATH": "/usr/bin:/bin"}, isolate=False)
            assert proc.wait(30) == n % 4
            proc.stop()
            assert proc.text().strip() == str(n)
    finally:
        warm.release()


# -- an exec of the same Python, handed to a spare of the warm child -------------------------------------------

EXEC_PROBE = r'''
import json, os, signal, sys, threading, time
if sys.argv[1] == "first":
    os.makedirs("lib", exist_ok=True)
    with open("lib/probe_marker.py", "w") as fh:
        fh.write("WHERE = 'PYTHONPATH'\n")
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: None)  # a handler: an exec resets it to the default
    kept, closed = os.pipe()  # kept: made inheritable; closed: close-on-exec, as Python makes every descriptor
    os.set_inheritable(kept, True)
    os.umask(0o027)
    os.makedirs("elsewhere", exist_ok=True)
    os.chdir("elsewhere")
    env = {**os.environ, "STAGE": "2", "PYTHONPATH": os.path.abspath("../lib"), **json.loads(sys.argv[2])}
    if env.pop("THREAD", None):
        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
    print("first", flush=True)
    os.execve(sys.executable, [sys.executable, os.path.abspath("../probe.py"), "second", str(kept), str(closed)], env)
else:
    def is_open(fd):
        try:
            os.fstat(fd)
            return True
        except OSError:
            return False
    import probe_marker
    import click
    umask = os.umask(0)
    print(json.dumps({"warm": "flask" in sys.modules, "stage": os.environ.get("STAGE"), "argv": sys.argv[1:2],
                      "kept": is_open(int(sys.argv[2])), "closed": is_open(int(sys.argv[3])),
                      "usr1 ignored": signal.getsignal(signal.SIGUSR1) == signal.SIG_IGN,
                      "term default": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
                      "cwd": os.path.basename(os.getcwd()), "umask": oct(umask), "marker": probe_marker.WHERE,
                      "click": getattr(click, "SHADOW", "the library"),
                      "path": sys.path[1] == os.path.abspath("../lib")}), flush=True)
    if os.environ.get("HOW") == "signal":
        os.kill(os.getpid(), signal.SIGTERM)
    if os.environ.get("HOW") == "hang":
        time.sleep(60)
    sys.exit(7)
'''


def _exec_probe(folder, extra_env=None, how=""):
    """Run the probe in the warm Python: its first stage execs this Python on its second; (exit code, what the
    second stage reported)."""
    import json

    from factorlab.process import wait_until
    from factorlab.runners import warm

    (folder / "probe.py").write_text(EXEC_PROBE)
    proc = warm.WarmProcess.start(["probe.py", "first", json.dumps(extra_env or {})], cwd=str(folder),
                                  env={"PATH": "/usr/bin:/bin", "HOW": how}, isolate=False)
    try:
        if how == "hang":
            assert wait_until(lambda: "{" in proc.text(), 30)
            code = proc.stop()
        else:
            code = proc.wait(30)
    finally:
        proc.stop()
    lines = proc.text().splitlines()
    assert lines[0] == "first", proc.text()
    return code, json.loads(lines[1])


@pytest.fixture
def warm_python():
    from factorlab.runners import warm

    warm.hold()
    try:
        assert warm.available()
        yield
    finally:
        warm.release()


def test_an_exec_of_the_same_python_runs_warm_as_a_fresh_process_would(tmp_path, warm_python, no_leftovers):
    code, seen = _exec_probe(tmp_path)
    assert code == 7
    assert seen == {"warm": True, "stage": "2", "argv": ["second"], "kept": True, "closed": False,
                    "usr1 ignored": True, "term default": True, "cwd": "elsewhere", "umask": "0o27",
                    "marker": "PYTHONPATH", "click": "the library", "path": True}


@pytest.mark.parametrize("how, code", [("signal", -15), ("hang", -15)], ids=["killed-itself", "stopped"])
def test_an_exec_handed_over_ends_as_the_process_it_replaced_would(tmp_path, warm_python, no_leftovers, how, code):
    assert _exec_probe(tmp_path, how=how)[0] == code


@pytest.mark.parametrize("env, shadow", [({"PYTHONOPTIMIZE": "1"}, False), ({"THREAD": "1"}, False),
                                         ({}, True)], ids=["start-up-variable", "a-thread", "shadowed-library"])
def test_an_exec_a_spare_could_not_reproduce_starts_cold(tmp_path, warm_python, no_leftovers, env, shadow):
    if shadow:  # a click.py on the second stage's PYTHONPATH: a fresh Python imports it, not the library
        (tmp_path / "lib").mkdir()
        (tmp_path / "lib" / "click.py").write_text("SHADOW = 'the app'\n")
    code, seen = _exec_probe(tmp_path, env)
    assert code == 7 and not seen["warm"] and seen["stage"] == "2" and seen["kept"] and not seen["closed"]
    assert seen["click"] == ("the app" if shadow else "the library")


def test_a_warm_start_in_a_folder_that_shadows_a_preloaded_library_starts_cold(tmp_path, warm_python, no_leftovers):
    from factorlab.runners import warm

    (tmp_path / "click.py").write_text("SHADOW = 'the app'\n")
    proc = warm.WarmProcess.start(["-c", "import sys, click; print('flask' in sys.modules, click.SHADOW)"],
                                  cwd=str(tmp_path), env={"PATH": "/usr/bin:/bin"}, isolate=False)
    assert proc.wait(30) == 0
    proc.stop()
    assert proc.text().split() == ["False", "the", "app"]


# -- process types from a Procfile, bound to loopback ------------------------------------------------------------

SERVES_ANYWHERE = '''import os
from wsgiref.simple_server import make_server

from flask import Flask

app = Flask(__name__)


@app.get("/")
def which():
    return {"port": os.environ["PORT"]}


if __name__ == "__main__":
    make_server("0.0.0.0", int(os.environ["PORT"]), app).serve_forever()  # every interface, as on a platform
'''


def procfile_app(folder: pathlib.Path, procfile: str | None) -> pathlib.Path:
    from helpers import write_app

    write_app(folder, {"shortly.py": SERVES_ANYWHERE, "requirements.txt": "Flask==3.1.3\n"})
    if procfile is not None:
        (folder / "Procfile").write_text(procfile)
    return folder


@pytest.mark.parametrize("web", ["exec python shortly.py", "flask --app shortly run --host 0.0.0.0 --port $PORT"],
                         ids=["python", "console-script"])
def test_a_procfile_line_runs_with_the_port_it_is_given_and_on_loopback_only(tmp_path, no_leftovers, web):
    """Python of the environment built from requirements.txt, or one of its console scripts (whose first line
    names that environment's Python: it was built elsewhere and moved into the cache)."""
    from helpers import listening_addresses

    folder = procfile_app(tmp_path / "app", f"# the web process\nweb: {web}\n"
                                            "worker: python -c 'import time; time.sleep(99)'\n")
    with LocalRunner(folder) as runner:
        one, two = runner.start(process_type="web"), runner.start(process_type="web")
        assert one.get("/").json() == {"port": str(one.port)} and two.get("/").json() == {"port": str(two.port)}
        assert listening_addresses(one.port) == {"127.0.0.1"}  # it asked for 0.0.0.0
        ports = one.port, two.port
    assert not any(port_open(port) for port in ports)


@pytest.mark.parametrize("procfile, seen", [
    (None, "there is no Procfile"),
    ("worker: python -c 'pass'\n", "has no `web:` line (its process types: worker)"),
    ("web python shortly.py\n", "line 1 is not `name: command`"),
    ("web: exec python shortly.py\nweb: python shortly.py\n", "names the process type 'web' twice"),
    ("web: exit 3\n", "exited with code 3"),
])
def test_a_procfile_that_cannot_start_the_process_says_why(tmp_path, no_leftovers, procfile, seen):
    with LocalRunner(procfile_app(tmp_path / "app", procfile)) as runner:
        with pytest.raises(AppFailed, match=re.escape(seen)):
            runner.start(process_type="web", ready_timeout=5)


def _bound(host: str, family: str, env: dict) -> str:
    import subprocess
    import sys

    code = f"import socket; s = socket.socket(socket.{family}); s.bind(({host!r}, 0)); print(s.getsockname()[0])"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("host, family, guarded", [
    ("0.0.0.0", "AF_INET", "127.0.0.1"), ("", "AF_INET", "127.0.0.1"), ("127.0.0.1", "AF_INET", "127.0.0.1"),
    ("::", "AF_INET6", "::ffff:127.0.0.1"), ("", "AF_INET6", "::ffff:127.0.0.1")])
def test_the_guard_turns_a_bind_to_every_interface_into_loopback(host, family, guarded):
    import os

    from factorlab.runners import GUARD

    if family == "AF_INET6" and not pathlib.Path("/proc/net/if_inet6").exists():
        pytest.skip("no IPv6 on this machine")
    env = {"PATH": os.environ["PATH"]}
    assert _bound(host, family, {**env, "PYTHONPATH": str(GUARD)}) == guarded
    if host:
        assert _bound(host, family, env) == host  # without it, the bind is what was asked


def test_the_guard_still_runs_the_sitecustomize_it_hides(tmp_path):
    import os
    import subprocess
    import sys

    from factorlab.runners import GUARD

    (tmp_path / "sitecustomize.py").write_text("import builtins\nbuiltins.SEEN = 'the next one ran'\n")
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join([str(GUARD), str(tmp_path)])}
    done = subprocess.run([sys.executable, "-c", "print(SEEN)"], env=env, capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "the next one ran", done.stderr


BINDS_ANYWHERE = '''import os, socket, subprocess, sys

from flask import Flask

app = Flask(__name__)


def bound(family, host):
    sock = socket.socket(family)
    sock.bind((host, 0))
    return sock.getsockname()[0]


AT_IMPORT = bound(socket.AF_INET, "0.0.0.0")


@app.get("/")
def where():
    # a child Python, as a server that execs or spawns its workers would start one
    child = subprocess.run([sys.executable, "-c", "import socket; s = socket.socket(); s.bind(('', 0)); "
                            "print(s.getsockname()[0])"], capture_output=True, text=True, env=os.environ)
    return {"import": AT_IMPORT, "request": bound(socket.AF_INET, ""), "child": child.stdout.strip()}
'''


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_every_python_a_check_starts_binds_loopback_whatever_it_asks(tmp_path, warm, no_leftovers):
    from helpers import write_app

    folder = write_app(tmp_path / "app", {"shortly.py": BINDS_ANYWHERE})
    session = LocalSession("shortly:app")
    session.prepare(folder) if warm else None
    try:
        with session.runner(folder) as runner:
            seen = runner.start().get("/").json()
            assert seen == {"import": "127.0.0.1", "request": "127.0.0.1", "child": "127.0.0.1"}
            ran = runner.run_command(["-c", "import socket; s = socket.socket(); s.bind(('0.0.0.0', 0)); "
                                      "print(s.getsockname()[0])"])
            assert (ran.code, ran.output.strip()) == (0, "127.0.0.1")
    finally:
        session.close()


def test_a_process_type_that_serves_nothing_is_only_started(tmp_path, no_leftovers):
    """listens=False (a worker): start() returns once the process runs, without waiting for a port; running() says
    whether the process it started still runs, and is False once it has exited or been stopped."""
    folder = procfile_app(tmp_path / "app", "web: exec python shortly.py\n"
                                            "worker: exec python -c 'import time; time.sleep(99)'\n"
                                            "once: exit 4\n")
    with LocalRunner(folder) as runner:
        worker = runner.start(process_type="worker", listens=False)
        assert worker.running() and not port_open(worker.port)
        once = runner.start(process_type="once", listens=False)
        assert wait_until(lambda: not once.running(), 20) and once.stop() == 4
        assert worker.running()
        worker.stop()
        assert not worker.running()
