"""The docker runner: same verdicts as the local runner, locked-down containers, nothing left behind.

These tests need a Docker engine (DOCKER_HOST). CI starts one and sets FACTORLAB_BASE_IMAGE and
FACTORLAB_WHEELHOUSE so that builds need no registry and no package index.
"""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest

from factorlab import checks
from factorlab.catalogue import load
from factorlab.checks import CHECK_TIMEOUT
from factorlab.docker import DockerSession, connect, leftovers
from factorlab.docker.images import Images
from factorlab.process import wait_until
from factorlab.runners import AppFailed
from factorlab.testpage import TestPage

from conftest import ROOT, our_children, outside_git, run_cli

pytestmark = pytest.mark.docker

COURSE = load(ROOT)
READY = [ex for ex in COURSE.exercises if ex.ready]
PREFIX = os.environ["FACTORLAB_RUN_PREFIX"]
WHOAMI = '''import os, socket
from flask import Flask

app = Flask(__name__)


@app.get("/")
def whoami():
    return {"uid": os.getuid(), "hostname_is_host": socket.gethostname() == os.environ.get("HOST_NAME")}
'''


@pytest.fixture
def nothing_left():
    """Fail the test if it leaves a container, an app image or a process behind."""
    yield
    time.sleep(0.2)
    assert not leftovers(PREFIX), leftovers(PREFIX)
    assert not our_children()


def statuses(report) -> dict[str, str]:
    return {r.check: r.status for r in report.results}


def differences(local, docker) -> str:
    """The checks whose verdicts differ, each with both messages, first (a report's whole text is long and gets
    cut where CI shows it), then both reports."""
    mine = {r.check: r for r in local.results}
    lines = []
    for theirs in docker.results:
        ours = mine.get(theirs.check)
        if ours is None or ours.status != theirs.status:
            lines.append(f"{theirs.check}: local {ours.status if ours else 'missing'}, docker {theirs.status}\n"
                         f"  local: {ours.message if ours else ''}\n  docker: {theirs.message}")
    return "\n".join(lines) + f"\n\nlocal:\n{local.to_text()}\n\ndocker:\n{docker.to_text()}"


@pytest.mark.parametrize("state", ["starter", "solution"])
@pytest.mark.parametrize("exercise", READY, ids=lambda ex: ex.id)
def test_both_runners_give_the_same_verdicts(exercise, state, nothing_left):
    """A starter: its own factor's checks give the same verdicts on both runners, and some fail. A solution: in
    containers, every check through its factor passes, which is what the local runner says of it
    (tests/test_selftest.py: test_the_scorecard_passes_every_factor_done_and_names_what_fails_next), so it is not run again here.
    (A starter's earlier factors are its starting point's, the previous solution's, checked here already.)"""
    if state == "solution":
        docker = checks.run_exercise(exercise, exercise.solution, COURSE, runner="docker",
                                     check_ids=COURSE.checks_through(exercise))
        failed = "\n".join(f"{r.check}: docker {r.status}, local passed\n  docker: {r.message}"
                           for r in docker.results if r.status != "passed")
        assert docker.passed, failed + f"\n\ndocker:\n{docker.to_text()}"
        return
    local = checks.run_exercise(exercise, exercise.starter, COURSE, runner="local", check_ids=exercise.checks)
    docker = checks.run_exercise(exercise, exercise.starter, COURSE, runner="docker", check_ids=exercise.checks)
    assert statuses(docker) == statuses(local), differences(local, docker)
    assert any(r.status == "failed" for r in docker.results), docker.to_text()


def test_the_legacy_app_fails_every_check_in_containers(tmp_path, nothing_left):
    legacy = outside_git(tmp_path, COURSE.legacy)
    last = READY[-1]
    report = checks.run_exercise(last, legacy, COURSE, runner="docker", check_ids=COURSE.checks_through(last))
    assert set(statuses(report).values()) == {"failed"}, report.to_text()


@pytest.mark.parametrize("exercise", READY, ids=lambda ex: ex.id)
def test_cli_exit_codes_in_containers(exercise, nothing_left):
    starter = run_cli("check", exercise.id[:2], "--runner", "docker", "--path", str(exercise.starter), "--json")
    assert starter.returncode == 1, starter.stdout + starter.stderr
    solution = run_cli("check", exercise.id[:2], "--runner", "docker", "--path", str(exercise.solution), "--json")
    assert solution.returncode == 0, solution.stdout + solution.stderr
    report = json.loads(solution.stdout)
    assert report["runner"] == "docker"
    # A check that only reads the folder says that no container confirmed it.
    static = [r for r in report["results"] if "no container needed" in r["message"]]
    started = [r for r in report["results"] if "no container needed" not in r["message"]]
    assert static and started


HOSTILE = {
    "never_binds": ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                    "while True:\n    time.sleep(1)\n", "did not start serving within"),
    "sleeps_forever": ("import time\ntime.sleep(10 ** 6)\n", "did not start serving within"),
    "fork_loop": ("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
                  "did not start serving within"),
    "allocates_without_bound": ("hoard = []\nwhile True:\n    hoard.append(bytearray(50_000_000))\n",
                                "memory limit"),
    "floods_stdout": ("import sys\nwhile True:\n    sys.stdout.write('noise ' * 200 + '\\n')\n",
                      "did not start serving within"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_app_is_stopped_and_reported_within_the_time_limit(name, tmp_path, nothing_left):
    source, cause = HOSTILE[name]
    (tmp_path / "shortly.py").write_text(source)
    started = time.monotonic()
    done = run_cli("check", "03", "--runner", "docker", "--path", str(tmp_path), "--json", timeout=CHECK_TIMEOUT + 60)
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert all(r["status"] != "error" and r["duration_s"] < CHECK_TIMEOUT for r in report["results"]), report
    assert elapsed < CHECK_TIMEOUT + 15, f"took {elapsed:.1f} s"  # the checks' limit, plus building the image
    assert any(r["status"] == "failed" and cause in r["message"] for r in report["results"]), done.stdout
    assert len(done.stdout) < 40_000 and not done.stderr.strip()


def _folder(tmp_path, code: str, requirements: str | None = "Flask==3.1.3\n"):
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "shortly.py").write_text(code)
    if requirements is not None:
        (folder / "requirements.txt").write_text(requirements)
    return folder


def test_containers_are_locked_down(tmp_path, nothing_left):
    folder = _folder(tmp_path, WHOAMI)
    session = DockerSession("shortly:app")
    try:
        runner = session.runner(folder)
        app = runner.start({"HOST_NAME": os.uname().nodename})
        seen = app.get("/").json()
        config = app.container.attrs["HostConfig"]
        assert seen["uid"] == 10001
        assert config["Memory"] == 512 * 1024 ** 2 and config["PidsLimit"] == 128
        assert config["NanoCpus"] == 1_000_000_000 and config["CapDrop"] == ["ALL"]
        assert "no-new-privileges" in config["SecurityOpt"] and config["NetworkMode"] == "host"
        assert app.stop() == 0, app.output()  # docker stop sends SIGTERM; the launcher exits cleanly
        runner.close()
    finally:
        session.close()


def test_an_app_expected_to_exit_gets_no_network(tmp_path, nothing_left):
    with TestPage() as page:
        code = (f"import urllib.request\ntry:\n    urllib.request.urlopen({page.url('/')!r}, timeout=3)\n"
                "    print('reached the host')\nexcept OSError as exc:\n    print('no network:', exc)\n"
                "raise SystemExit(3)\n")
        folder = _folder(tmp_path, code)
        session = DockerSession("shortly:app")
        try:
            code, output, serving = session.runner(folder).run_to_exit({})
        finally:
            session.close()
    assert (code, serving) == (3, False)
    assert "no network" in output and "reached the host" not in output


def test_an_app_expected_to_exit_that_serves_instead_is_seen_serving(tmp_path, nothing_left):
    """Seen from the host (the container's network namespace, through /proc) or by a probe inside: either way, at
    once, even while the app forks without end beside its server."""
    folder = _folder(tmp_path, WHOAMI + "import os, threading\n\n\ndef forks():\n    while True:\n        try:\n"
                                        "            os.fork() == 0 and threading.Event().wait()\n"
                                        "        except OSError:\n            pass\n\n\n"
                                        "threading.Thread(target=forks, daemon=True).start()\n")
    session = DockerSession("shortly:app")
    try:
        started = time.monotonic()
        code, output, serving = session.runner(folder).run_to_exit({}, timeout=8)
        took = time.monotonic() - started
    finally:
        session.close()
    assert (code, serving) == (None, True), output
    assert took < 8 + 10, f"took {took:.1f} s"  # the time limit, then a stop


def test_editing_the_code_does_not_reinstall_dependencies(tmp_path, monkeypatch, nothing_left):
    folder = _folder(tmp_path, WHOAMI)
    session = DockerSession("shortly:app")
    session.image_for(folder)
    session.close()
    builds = []
    original, commit = Images._build, Images._commit
    monkeypatch.setattr(Images, "_build", lambda self, ctx, dockerfile, *a, **k:
                        (builds.append(dockerfile), original(self, ctx, dockerfile, *a, **k))[1])
    monkeypatch.setattr(Images, "_commit", lambda self, *a, **k: (builds.append("app stage"), commit(self, *a, **k))[1])
    (folder / "shortly.py").write_text(WHOAMI + "\n# an edit\n")
    session = DockerSession("shortly:app")
    try:
        session.image_for(folder)
    finally:
        session.close()
    assert builds == ["app stage"], "only the app layer is made again"
    builds.clear()
    (folder / "requirements.txt").write_text(f"Flask==3.1.3\n# {uuid.uuid4()}: a manifest of this run only\n")
    session = DockerSession("shortly:app")
    try:
        session.image_for(folder)
        deps = [tag for tag in session.images._built if tag.startswith("factorlab/deps:")]
    finally:
        session.close()
    assert builds == [".factorlab/Dockerfile", "app stage"], "a new manifest builds new dependencies"
    client = connect()
    client.images.remove(deps[0])  # not a cache worth keeping
    client.close()


def test_the_app_stage_made_by_a_commit_is_the_image_the_dockerfile_builds(tmp_path, nothing_left):
    from factorlab.docker import images

    folder = _folder(tmp_path, WHOAMI)
    (folder / "bin").mkdir()
    (folder / "bin" / "tool.sh").write_text("#!/bin/sh\necho tool\n")
    (folder / "bin" / "tool.sh").chmod(0o755)
    (folder / "link").symlink_to("bin/tool.sh")
    stage = images.TEMPLATE.read_text().split("\nFROM deps\n", 1)[1]
    assert images.commit_plan(stage) is not None, "the course's Dockerfile is committed, not built"
    session = DockerSession("shortly:app")
    client = connect()
    try:
        committed = session.image_for(folder)
        deps = session.images.deps(images.manifest_files(folder))
        context = images._tar(lambda tar: (images._add_tree(tar, folder, "app"), images._add_bytes(
            tar, "Dockerfile", f"FROM {deps}\n{stage}".encode())))
        built = f"factorlab/app:{PREFIX}built"
        session.images._build(context, "Dockerfile", built, {"role": "app"})
        session.images._built["built"] = built  # removed with the session's other app images

        def config(tag):
            found = client.images.get(tag).attrs["Config"]
            return {key: found.get(key) for key in ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels",
                                                    "ExposedPorts", "Volumes")}

        listing = ["sh", "-c", "cd / && find app -mindepth 1 -exec stat -c '%n %u:%g %a %Y %s %N' {} + | sort"]
        files = {tag: client.containers.run(tag, listing, remove=True, network_mode="none").decode()
                 for tag in (committed, built)}
        assert config(committed) == config(built)
        assert files[committed] == files[built] and "app/bin/tool.sh 10001:10001 755" in files[built]
    finally:
        client.close()
        session.close()


@pytest.mark.parametrize("stage", ["WORKDIR /app\nCOPY --chown=1:1 app/ /app/\n", "COPY --chown=1:1 app/ /app/\nRUN true\n",
                                   "COPY app/ /app/\n", "COPY --chown=1:1 app/ /app/\nCOPY extra /extra\n",
                                   "COPY --chown=1:1 app/ /app/\nADD https://example.org/x /x\n"])
def test_an_app_stage_a_commit_cannot_make_is_built(stage):
    from factorlab.docker.images import commit_plan

    assert commit_plan(stage) is None


def test_an_app_stage_of_a_copy_and_config_is_committed():
    from factorlab.docker.images import CommitPlan, commit_plan

    stage = "# the app\nCOPY --chown=7:8 app/ /srv/app/\nWORKDIR /srv/app\nENV A=1 \\\n    B=2\nCMD [\"python\"]\n"
    assert commit_plan(stage) == CommitPlan("/srv/app/", (7, 8), ["WORKDIR /srv/app", "ENV A=1      B=2",
                                                                   'CMD ["python"]'])


def test_an_undeclared_dependency_is_missing_in_the_container(tmp_path, nothing_left):
    code = WHOAMI.replace("import os, socket", "import os, socket\nimport requests")
    folder = _folder(tmp_path, code)
    session = DockerSession("shortly:app")
    try:
        with pytest.raises(AppFailed, match="No module named 'requests'"):
            session.runner(folder).start({})
    finally:
        session.close()


def test_a_manifest_that_cannot_install_fails_the_build(tmp_path, nothing_left):
    folder = _folder(tmp_path, WHOAMI, "Flask==3.1.3\nno-such-package-factorlab==1.0\n")
    done = run_cli("check", "01", "--runner", "docker", "--path", str(folder))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "the image did not build: pip could not install requirements.txt" in done.stdout


def test_a_missing_base_image_is_an_infrastructure_error(tmp_path, nothing_left):
    folder = _folder(tmp_path, WHOAMI, "Flask==3.1.3\n# a manifest no other test uses\n")
    # A registry on the loopback port 1: the pull is refused at once, and no traffic leaves the machine.
    done = run_cli("check", "01", "--runner", "docker", "--path", str(folder),
                   env={"FACTORLAB_BASE_IMAGE": "127.0.0.1:1/factorlab/missing:none"})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "FACTORLAB_BASE_IMAGE" in done.stderr and "Traceback" not in done.stderr


def test_keep_leaves_containers_for_inspection(tmp_path):
    done = run_cli("check", "01", "--runner", "docker", "--path", str(COURSE.get("01").solution), "--keep")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "kept for inspection" in done.stderr
    client = connect()
    try:
        kept = client.containers.list(all=True, filters={"label": f"org.factorlab.prefix={PREFIX}"})
        assert kept and all(c.status == "exited" for c in kept)
        assert "factorlab launcher: serving" in kept[0].logs().decode()
    finally:
        for container in kept:
            container.remove(force=True)
        for image in client.images.list(filters={"label": [f"org.factorlab.prefix={PREFIX}", "org.factorlab.role=app"]}):
            client.images.remove(image.id, force=True)
        client.close()


def test_code_changes_come_from_docker_diff(tmp_path, nothing_left):
    from test_runner import WRITES_INTO_ITS_FOLDER

    folder = _folder(tmp_path, WRITES_INTO_ITS_FOLDER)
    session = DockerSession("shortly:app")
    try:
        runner = session.runner(folder)
        app = runner.start({})
        app.stop()
        assert app.code_changes() == ["written.txt"]
        runner.close()
    finally:
        session.close()


def test_kill_ends_the_container_at_once(tmp_path, nothing_left):
    folder = _folder(tmp_path, WHOAMI)
    session = DockerSession("shortly:app")
    try:
        runner = session.runner(folder)
        app = runner.start({})
        app.kill()
        state, code = session.status(app.container)
        assert state == "exited" and code == 137
        runner.close()
    finally:
        session.close()


def test_a_procfile_line_runs_in_a_container_with_its_port_on_loopback_only(tmp_path, nothing_left):
    from helpers import listening_addresses
    from test_runner import procfile_app

    folder = procfile_app(tmp_path / "app", "web: exec python shortly.py\n")
    session = DockerSession("shortly:app")
    try:
        runner = session.runner(folder)
        one, two = runner.start(process_type="web"), runner.start(process_type="web")
        assert one.get("/").json() == {"port": str(one.port)} and two.get("/").json() == {"port": str(two.port)}
        assert listening_addresses(one.port) == {"127.0.0.1"}  # host networking: it asked for 0.0.0.0
        (folder / "Procfile").write_text("worker: python -c pass\n")  # the image is made; the line is read anew
        with pytest.raises(AppFailed, match=r"no `web:` line \(its process types: worker\)"):
            session.runner(folder).start(process_type="web")
        runner.close()
    finally:
        session.close()


def test_a_process_type_that_serves_nothing_runs_in_a_container(tmp_path, nothing_left):
    from test_runner import procfile_app

    folder = procfile_app(tmp_path / "app", "web: exec python shortly.py\n"
                                            "worker: exec python -c 'import time; time.sleep(99)'\n"
                                            "once: exit 4\n")
    session = DockerSession("shortly:app")
    try:
        runner = session.runner(folder)
        worker = runner.start(process_type="worker", listens=False)
        once = runner.start(process_type="once", listens=False)
        assert wait_until(lambda: not once.running(), 30) and once.stop() == 4
        assert worker.running()
        worker.stop()
        assert not worker.running()
        runner.close()
    finally:
        session.close()


# A worker whose child leaves the process group (as RQ's job fork does) and ends with code 3 on SIGTERM; the
# parent ignores SIGTERM, waits for the child, and exits 0 only if the child got it.
ESCAPEE = '''import os, signal, sys, time
child = os.fork()
if child == 0:
    os.setpgrp()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(3))
    while True:
        time.sleep(0.1)
signal.signal(signal.SIGTERM, lambda *_: None)
_, status = os.waitpid(child, 0)
sys.exit(0 if os.waitstatus_to_exitcode(status) == 3 else 5)
'''


def test_sigterm_reaches_every_process_of_a_container(tmp_path, nothing_left):
    from test_runner import procfile_app

    folder = procfile_app(tmp_path / "app", "web: exec python shortly.py\nworker: python escapee.py\n")
    (folder / "escapee.py").write_text(ESCAPEE)
    session = DockerSession("shortly:app")
    try:
        runner = session.runner(folder)
        worker = runner.start(process_type="worker", listens=False)
        assert worker.exited(1) is None  # it runs until told
        worker.terminate()
        assert worker.exited(30) == 0, worker.output()  # 0: the child that left the group got SIGTERM too
        runner.close()
    finally:
        session.close()
