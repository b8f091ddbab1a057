"""A classroom lab end to end: a learner's `factorlab submit`, an instructor's `factorlab grade` of a whole class
(good, bad, hostile), and what the grade writes (CSV, JSON by its schema, HTML)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

import jsonschema
import pytest
import referencing

from factorlab import catalogue, grading, secrets, submission
from factorlab.dev import hostile

from conftest import ROOT, run_cli

DOCS = ROOT / "docs"
RESULTS_SCHEMA = json.loads((DOCS / "results.schema.json").read_text())
GRADES_SCHEMA = json.loads((DOCS / "grades.schema.json").read_text())
HANG = "import time\nwhile True:\n    time.sleep(1)\n"
FLOOD = "import sys\nfor _ in range(200000):\n    sys.stdout.write('x' * 200 + '\\n')\n"


def validate(data: dict) -> None:
    registry = referencing.Registry().with_resources([
        (RESULTS_SCHEMA["$id"], referencing.Resource.from_contents(RESULTS_SCHEMA)),
        (GRADES_SCHEMA["$id"], referencing.Resource.from_contents(GRADES_SCHEMA))])
    jsonschema.Draft202012Validator(GRADES_SCHEMA, registry=registry).validate(data)


def clone(dest: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(ROOT), str(dest)], check=True, timeout=120)
    return dest


def solve(course: Path, ids: list[str]) -> None:
    """Put the reference solutions into a clone's exercise folders, as a learner who finished them would have."""
    for exercise_id in ids:
        target = course / "exercises" / exercise_id
        shutil.rmtree(target)
        shutil.copytree(ROOT / "solutions" / exercise_id, target)


def submit(course: Path, *args: str) -> subprocess.CompletedProcess:
    return run_cli("submit", *args, cwd=course, env={"FACTORLAB_COURSE": str(course)})


def rows_of(out: Path) -> list[dict]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def verdicts(out: Path) -> dict[tuple[str, str, str], str]:
    return {(r["id"], r["exercise"], r["check"]): r["status"] for r in rows_of(out)}


GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b", "GIT_COMMITTER_NAME": "a",
           "GIT_COMMITTER_EMAIL": "a@b"}


def commit_all(folder: Path) -> None:
    """Make folder a git repository with everything in one commit."""
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "x"]):
        subprocess.run(["git", "-C", str(folder), *args], check=True, env=GIT_ENV, capture_output=True)


def tree(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")} if folder.exists() else set()


# -- submit ---------------------------------------------------------------------------------------------------


def test_submit_packs_what_git_would_commit_with_a_manifest_and_leaves_data_and_config_out(tmp_path):
    course = clone(tmp_path / "course")
    solve(course, ["01_codebase"])
    folder = course / "exercises" / "03_config"
    for name, text in {"shortly.db": "data", ".env": "SHORTLY_SECRET_KEY=x", "shortly.log": "log",
                       "notes.log": "log", "backup.sqlite3": "data", "__pycache__/shortly.cpython-311.pyc": "pyc",
                       ".venv/bin/python": "venv", "extra.py": "print('mine')\n"}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    (folder / ".gitignore").write_text("notes.log\n")
    done = submit(course, "--student", "ada@example.org")
    assert done.returncode == 0, done.stderr
    archive = course / "factorlab-submission-ada@example.org.zip"
    assert str(archive) in done.stdout and "KiB" in done.stdout
    with zipfile.ZipFile(archive) as packed:
        names = set(packed.namelist())
        manifest = json.loads(packed.read(submission.MANIFEST))
        for name in names - {submission.MANIFEST}:
            assert manifest["files"][name] == __import__("hashlib").sha256(packed.read(name)).hexdigest()
    assert "exercises/03_config/extra.py" in names and "exercises/03_config/.env.example" in names
    taken = {n for n in names if n.startswith("exercises/03_config/")}
    for left in ("shortly.db", ".env", "shortly.log", "notes.log", "backup.sqlite3", "__pycache__", ".venv"):
        assert not any(n.removeprefix("exercises/03_config/").split("/")[0] == left for n in taken), left
    assert "exercises/03_config/backup.sqlite3" in manifest["left_out"]
    assert manifest["student"] == "ada@example.org" and manifest["format"] == submission.FORMAT
    assert manifest["course"]["commit"] and manifest["exercises"][0] == "01_codebase"
    assert set(manifest["verdicts"]) == set(manifest["exercises"])
    # the same work makes the same archive
    again = submit(course, "--student", "ada@example.org", "--out", str(tmp_path / "again.zip"))
    assert again.returncode == 0 and (tmp_path / "again.zip").read_bytes() == archive.read_bytes()


@pytest.mark.parametrize("name, text", [
    ("exercises/03_config/shortly.py", 'SECRET_KEY = "9f2c4e1ab77d03e5c6f1aa"\n'),
    ("exercises/03_config/settings.py", 'import os\nKEY = os.environ.get("SHORTLY_ADMIN_TOKEN", "Qm7xT2pL9vR4sW8n")\n'),
    ("exercises/03_config/deploy.sh", "export SHORTLY_PREVIEW_TOKEN=a8F3kL0pQ7zX2mN5\n"),
    ("exercises/03_config/OPS.md", "psql postgresql://reports:Tr0ub4dor-3@prod-db-1/shortly\n"),
    ("exercises/03_config/aws.txt", "key AKIAIOSFODNN7EXAMPLF\n"),
    ("exercises/03_config/id_rsa", "anything\n"),
    ("exercises/03_config/notes.md", "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n"),
    ("exercises/03_config/conf.json", '{"api_key": "9fA3kQ7zL2mX8pR4"}\n'),
    ("exercises/03_config/fetch.sh", 'curl -H "Authorization: Bearer 9fA3kQ7zL2mX8pR4tY6u" "$URL"\n'),
    ("exercises/03_config/cache.txt", "REDIS_URL=redis://:Xk29fLq0pZ7wQ@prod-redis:6379\n"),
    ("exercises/03_config/helpers.py", "def fetch(url, token='9fA3kQ7zL2mX8pR4'):\n    pass\n"),
    ("exercises/03_config/half.py", "def (:\nAPI_TOKEN = '9fA3kQ7zL2mX8pR4'\n"),
])
def test_submit_refuses_to_pack_anything_that_looks_like_a_secret(tmp_path, name, text):
    course = clone(tmp_path / "course")
    (course / name).write_text(text)
    done = submit(course, "--student", "ada")
    assert done.returncode == 2 and not list(course.glob("*.zip"))
    assert "look like secrets" in done.stderr and name in done.stderr and ".env" in done.stderr


@pytest.mark.parametrize("name, text", [
    (".env.example", "DATABASE_URL=postgresql://postgres:postgres@localhost:5432/shortly\n"),
    ("compose.yml", "  DATABASE_URL: postgresql://shortly:shortly-dev@db:5432/shortly\n"),
    ("settings.py", "import os\nURL = os.environ.get('DATABASE_URL', 'postgresql://shortly:devpass@localhost/s')\n"),
    (".env.example", "SHORTLY_SECRET_KEY=change-me\nSHORTLY_ADMIN_TOKEN=<your token>\n"),
    ("shortly.py", "TOKEN_HEADER = 'Authorization'\nPASSWORD_FIELD = 'password'\n"),
])
def test_local_development_defaults_and_placeholders_are_not_secrets(name, text):
    assert secrets.find(name, text.encode()) == []


def test_what_the_course_ships_and_made_up_values_are_not_secrets(course):
    for folder in (course.legacy, *(ROOT / kind for kind in ("exercises", "solutions"))):
        for path in folder.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                assert secrets.find(path.as_posix(), path.read_bytes()) == [], path
    for value in ("FAKE-admin-token-letmein", "change-me", "<your token>", "${SHORTLY_SECRET_KEY}",
                  "test-preview-token", "SHORTLY_PREVIEW_TOKEN", "factorlab-check-redis"):
        assert not secrets.random_looking(value), value
    assert secrets.random_looking(__import__("secrets").token_hex(16))
    assert secrets.random_looking(__import__("secrets").token_urlsafe(24) + "7a")


def test_submit_asks_who_you_are_on_a_shared_account(tmp_path):
    course = clone(tmp_path / "course")
    done = run_cli("submit", cwd=course, env={"FACTORLAB_COURSE": str(course), "USER": "jovyan",
                                               "LOGNAME": "jovyan", "GIT_CONFIG_GLOBAL": "/dev/null",
                                               "GIT_CONFIG_NOSYSTEM": "1"})
    assert done.returncode == 2 and "--student" in done.stderr
    bad = submit(course, "--student", "../../etc")
    assert bad.returncode == 2 and "not a usable student id" in bad.stderr


# -- taking submissions in --------------------------------------------------------------------------------------


def test_factor_ranges():
    cat = catalogue.load(ROOT)
    assert [e.factor for e in grading.parse_factors("01-03", cat)] == [1, 2, 3]
    assert [e.factor for e in grading.parse_factors("2,5-6", cat)] == [2, 5, 6]
    assert len(grading.parse_factors(None, cat)) == 12
    for bad in ("0-3", "x", "5-2", "13"):
        with pytest.raises(ValueError):
            grading.parse_factors(bad, cat)


def test_a_folder_or_checkout_is_taken_without_links_out_or_repository_config_of_its_own(tmp_path):
    cat = catalogue.load(ROOT)
    canary = tmp_path / "hook-ran"
    # a folder with a link to a file outside and a repository config that would run a command
    folder = tmp_path / "folder"
    shutil.copytree(ROOT / "solutions" / "01_codebase", folder / "exercises" / "01_codebase")
    (folder / "exercises" / "01_codebase" / "passwd").symlink_to("/etc/passwd")
    nested = folder / "exercises" / "01_codebase" / ".git"
    subprocess.run(["git", "init", "-q", str(nested.parent)], check=True)
    with open(nested / "config", "a") as config:
        config.write(f"[core]\n\tfsmonitor = touch {canary}\n\tpager = touch {canary}\n")
    # a checkout whose last commit holds a link out
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "solutions" / "01_codebase", checkout / "exercises" / "01_codebase")
    (checkout / "exercises" / "01_codebase" / "passwd").symlink_to("/etc/passwd")
    commit_all(checkout)
    work = tmp_path / "work"
    taken = grading.take(str(folder), 0, work, cat)
    assert taken.status == grading.GRADED, taken.reason
    assert not (taken.root / "exercises" / "01_codebase" / "passwd").exists()
    assert not (taken.root / "exercises" / "01_codebase" / ".git").exists()
    rejected = grading.take(str(checkout), 1, work, cat)
    assert rejected.status == grading.REJECTED and "link" in rejected.reason, rejected.reason
    assert not (work / "001").exists()
    report = grading._run(cat.get("01"), taken.root / "exercises" / "01_codebase", cat, "local")
    assert report.passed, report.to_text()
    assert not canary.exists()


def test_a_submission_changed_after_submit_is_graded_and_flagged(tmp_path):
    course = clone(tmp_path / "course")
    assert submit(course, "--student", "bo").returncode == 0
    archive = course / "factorlab-submission-bo.zip"
    changed = tmp_path / "bo.zip"
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(changed, "w") as dest:
        for info in source.infolist():
            data = source.read(info)
            dest.writestr(info, data + b"# edited\n" if info.filename.endswith("01_codebase/shortly.py") else data)
    taken = grading.take(str(changed), 0, tmp_path / "work", catalogue.load(ROOT))
    assert taken.status == grading.GRADED and taken.id == "bo"
    assert any("differ from the manifest" in note and "01_codebase/shortly.py" in note for note in taken.notes)


# -- grading a class ----------------------------------------------------------------------------------------------


def make_class(tmp_path: Path) -> tuple[list[str], dict[str, str], Path]:
    """A class to grade: a learner's archive (solved through III, one file their own), the reference solutions
    as a folder, the course as shipped as a git checkout, broken code (a syntax error, an app that hangs, one
    that floods its output), every hostile archive, and a second archive with the first one's student id."""
    learner = clone(tmp_path / "learner")
    solve(learner, ["01_codebase", "02_dependencies", "03_config"])
    with open(learner / "exercises" / "03_config" / "shortly.py", "a") as code:
        code.write("\n# Ada's own comment\n")
    done = submit(learner, "--student", "ada")
    assert done.returncode == 0, done.stderr
    ada = learner / "factorlab-submission-ada.zip"
    solutions = tmp_path / "class" / "solutions"
    for exercise_id in ("01_codebase", "02_dependencies", "03_config"):
        shutil.copytree(ROOT / "solutions" / exercise_id, solutions / "exercises" / exercise_id)
    starters = clone(tmp_path / "class" / "starters")
    broken = tmp_path / "class" / "broken"
    for exercise_id, prefix in (("01_codebase", "def broken(:\n"), ("02_dependencies", HANG), ("03_config", FLOOD)):
        shutil.copytree(ROOT / "solutions" / exercise_id, broken / "exercises" / exercise_id)
        app = broken / "exercises" / exercise_id / "shortly.py"
        app.write_text(prefix + app.read_text())
    expected = hostile.write_corpus(tmp_path / "class" / "hostile", ada)
    done = submit(learner, "--student", "cy", "--out", str(tmp_path / "class" / "cy.zip"))
    assert done.returncode == 0, done.stderr
    again = tmp_path / "class" / "cy-again.zip"
    shutil.copy(tmp_path / "class" / "cy.zip", again)
    sources = [str(ada), str(solutions), str(starters), str(broken),
               *(str(tmp_path / "class" / "hostile" / name) for name in sorted(expected)),
               str(tmp_path / "class" / "cy.zip"), str(again)]
    return sources, expected, learner


def check_class(out: Path, expected: dict[str, str], sources: list[str]) -> None:
    rows = rows_of(out)
    data = json.loads((out / "grades.json").read_text())
    validate(data)
    by_source = {s["source"]: s for s in data["submissions"]}
    assert list(by_source) == sources
    for name, phrase in expected.items():
        sub = next(s for src, s in by_source.items() if src.endswith("/" + name))
        assert sub["status"] == "rejected" and phrase in sub["reason"].lower(), (name, sub["reason"])
        assert [r["status"] for r in rows if r["id"] == sub["id"] and r["message"] == sub["reason"]] == ["rejected"]
    ada = by_source[sources[0]]
    assert ada["id"] == "ada" and ada["score"] == 3 and ada["manifest"]["student"] == "ada"
    for duplicate in sources[-2:]:  # two archives say they are cy's: neither is graded
        assert by_source[duplicate]["status"] == "rejected", by_source[duplicate]
        assert "duplicate student id 'cy'" in by_source[duplicate]["reason"]
    solved = by_source[sources[1]]
    assert solved["score"] == 3 and all(e["status"] == "passed" for e in solved["exercises"].values())
    shared = [r for e in solved["exercises"].values() for r in e["results"] if "verdict is shared" in r["message"]]
    assert shared  # 01 and 02 are the same files as Ada's
    shipped = by_source[sources[2]]
    assert shipped["score"] == 0 and "a git checkout" in " ".join(shipped["notes"])
    assert all(e["status"] == "failed" for e in shipped["exercises"].values())
    bad = by_source[sources[3]]["exercises"]
    assert bad["01_codebase"]["status"] == "failed"
    hung = " ".join(r["message"] for r in bad["02_dependencies"]["results"] if r["status"] != "passed")
    assert bad["02_dependencies"]["status"] == "failed" and ("did not" in hung or "hung" in hung), hung
    assert bad["03_config"]["status"] in ("failed", "passed")  # bounded: it finished, whatever it printed
    page = (out / "report.html").read_text()
    assert page.count("data-student=") == len(sources) and page.count("data-status='rejected'") == len(expected) + 2


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_class_is_graded_in_containers_and_nothing_escapes_or_stays(tmp_path, no_leftovers):
    from factorlab.docker import leftovers

    sources, expected, learner = make_class(tmp_path)
    instructor = tmp_path / "instructor"
    instructor.mkdir()
    before = {p: tree(p) for p in (tmp_path / "class", learner)}
    temp = tmp_path / "temp"  # the grader's temporary folder: empty again at the end
    temp.mkdir()
    done = run_cli("grade", *sources, "--factors", "01-03", "--jobs", "2", "--out", "grades", cwd=instructor,
                   timeout=840, env={"TMPDIR": str(temp)})
    assert done.returncode == 0, done.stderr
    out = instructor / "grades"
    assert f"graded 4 submission(s), rejected {len(expected) + 2}" in done.stdout and "report.html" in done.stdout
    assert "unsandboxed" not in done.stderr
    check_class(out, expected, sources)
    assert json.loads((out / "grades.json").read_text())["runner"] == "docker"
    # nothing written outside the grading workspace, which is gone; nothing left running
    assert tree(instructor) == {"grades", "grades/grades.csv", "grades/grades.json", "grades/report.html"}
    assert {p: tree(p) for p in before} == before
    assert tree(temp) == set()
    canaries = [p for p in Path(tempfile.gettempdir()).glob("*canary*")] + list(tmp_path.rglob("*canary*"))
    assert not canaries, canaries
    assert leftovers(os.environ["FACTORLAB_RUN_PREFIX"]) == []


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_grading_here_warns_it_is_unsandboxed_and_gives_the_same_verdicts_twice(tmp_path, no_leftovers):
    learner = clone(tmp_path / "learner")
    solve(learner, ["01_codebase"])
    assert submit(learner, "--student", "cy").returncode == 0
    broken = tmp_path / "broken"
    shutil.copytree(ROOT / "solutions" / "02_dependencies", broken / "exercises" / "02_dependencies")
    (broken / "exercises" / "02_dependencies" / "requirements.txt").write_text("flask\n")  # not pinned
    sources = [str(learner / "factorlab-submission-cy.zip"), str(broken)]
    results = []
    for n in (1, 2):
        done = run_cli("grade", *sources, "--runner", "local", "--factors", "01-02", "--out", str(tmp_path / f"g{n}"),
                       timeout=540)
        assert done.returncode == 0, done.stderr
        assert "unsandboxed" in done.stderr and "warning" in done.stderr
        results.append(verdicts(tmp_path / f"g{n}"))
    assert results[0] == results[1]
    assert results[0][("cy", "01_codebase", "codebase.git_repository")] == "passed"
    assert results[0][("cy", "02_dependencies", "dependencies.runbook")] == "failed"  # the starter, as shipped
    assert results[0][("broken", "01_codebase", "")] == "missing"
    assert results[0][("broken", "02_dependencies", "dependencies.manifest_pinned")] == "failed"


def test_what_students_control_is_inert_in_the_report_and_the_spreadsheet(tmp_path):
    from factorlab import gradebook
    from factorlab.results import FAILED, CheckResult, Report

    cat = catalogue.load(ROOT)
    odd = tmp_path / "<img src=x onerror=alert(1)>.zip"
    odd.write_text("=HYPERLINK(\"http://example.invalid\")")
    result = grading.grade([str(odd)], cat, grading.parse_factors("01", cat), tmp_path / "work", runner="local")
    sub = result.submissions[0]
    assert sub.status == grading.REJECTED and not set(sub.id) & set("<>=' ")
    sub.status, sub.reason = grading.GRADED, ""
    sub.reports["01_codebase"] = Report("01_codebase", "x", "local", [CheckResult(
        "codebase.prod_fix_kept", "t", 1, FAILED, "=cmd|' /C calc'!A0 <script>alert(1)</script>")])
    paths = gradebook.write(result, tmp_path / "out")
    page = paths["html"].read_text()
    assert "<script>alert" not in page and "<img src=x" not in page and "&lt;script&gt;" in page
    message = [r for r in rows_of(tmp_path / "out") if r["check"]][0]["message"]
    assert message.startswith("'=cmd")


def test_a_checkout_is_read_without_running_anything_its_config_names(tmp_path):
    """A repository's own config can name a smudge filter or a hook that runs a command; the grader reads the
    last commit from a bare clone, which takes no config."""
    canary = tmp_path / "filter-ran"
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "solutions" / "01_codebase", checkout / "exercises" / "01_codebase")
    (checkout / ".gitattributes").write_text("* filter=evil\n")
    commit_all(checkout)
    with open(checkout / ".git" / "config", "a") as config:
        config.write(f'[filter "evil"]\n\tsmudge = touch {canary}; cat\n\tclean = cat\n'
                     f"[core]\n\tfsmonitor = touch {canary}\n\thooksPath = /nonexistent\n")
    subprocess.run(["git", "-C", str(checkout), "archive", "--format=tar", "-o", str(tmp_path / "x.tar"), "HEAD"],
                   check=True, capture_output=True)
    assert canary.exists()  # the trap is real: git archive in the checkout runs it
    canary.unlink()
    taken = grading.take(str(checkout), 0, tmp_path / "work", catalogue.load(ROOT))
    assert taken.status == grading.GRADED, taken.reason
    assert (taken.root / "exercises" / "01_codebase" / "shortly.py").read_bytes() == \
        (ROOT / "solutions" / "01_codebase" / "shortly.py").read_bytes()
    assert not canary.exists()


def test_a_manifest_that_is_not_one_is_ignored_not_fatal(tmp_path):
    folder = tmp_path / "odd"
    shutil.copytree(ROOT / "solutions" / "01_codebase", folder / "exercises" / "01_codebase")
    cat = catalogue.load(ROOT)
    for n, text in enumerate(["[" * 200000 + "]" * 200000, '{"format": "factorlab-submission", "student": 7, '
                              '"files": [1], "course": "x"}', "not json"]):
        (folder / submission.MANIFEST).write_text(text)
        taken = grading.take(str(folder), n, tmp_path / "work", cat)
        assert taken.status == grading.GRADED and taken.id == "odd", taken.reason


def test_a_folder_that_looks_like_a_repository_runs_nothing_and_fools_no_check(tmp_path):
    """git takes a folder holding HEAD, objects/ and refs/ for a repository, with its config; the grader lets
    git use only repositories it names or finds as a .git folder (safe.bareRepository=explicit), so the config
    never runs."""
    canary = tmp_path / "fsmonitor-ran"
    folder = tmp_path / "fake"
    app = folder / "exercises" / "01_codebase"
    shutil.copytree(ROOT / "solutions" / "01_codebase", app)
    (app / "HEAD").write_text("ref: refs/heads/main\n")
    for name in ("objects/info/keep", "refs/keep"):
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_text("")
    (app / "config").write_text(f'[core]\n\trepositoryformatversion = 0\n\tbare = false\n\tworktree = .\n'
                                f'\tfsmonitor = "touch {canary}; false"\n')
    cat = catalogue.load(ROOT)
    result = grading.grade([str(folder)], cat, grading.parse_factors("01", cat), tmp_path / "work", runner="local")
    assert result.submissions[0].status == grading.GRADED
    assert not canary.exists()
    git_check = [r for r in result.submissions[0].reports["01_codebase"].results if r.check == "codebase.git_repository"]
    # git refuses the planted repository outright: the check fails, as it must for a folder that pretends
    assert git_check[0].status == "failed" and "repository" in git_check[0].message, git_check


def test_names_that_are_not_utf8_and_links_between_exercises_never_stop_the_grading(tmp_path):
    cat = catalogue.load(ROOT)
    odd = Path(os.fsdecode(bytes(tmp_path) + b"/bad\xffname"))
    shutil.copytree(ROOT / "solutions" / "01_codebase", odd / "exercises" / "01_codebase")
    commit_all(odd)
    linked = tmp_path / "linked"
    shutil.copytree(ROOT / "solutions" / "02_dependencies", linked / "exercises" / "02_dependencies")
    (linked / "exercises" / "01_codebase").symlink_to("02_dependencies")
    import tarfile
    with tarfile.open(tmp_path / "linked.tar", "w") as tar:
        tar.add(linked / "exercises", "exercises")
    result = grading.grade([str(odd), str(tmp_path / "linked.tar")], cat, grading.parse_factors("01-02", cat),
                           tmp_path / "work", runner="local")
    first, second = result.submissions
    assert first.status == grading.GRADED and "\\xff" in first.source
    assert second.status == grading.GRADED and "01_codebase" in second.missing
    assert any("is a link" in note for note in second.notes)
    from factorlab import gradebook
    paths = gradebook.write(result, tmp_path / "out")
    assert json.loads(paths["json"].read_text())["submissions"][0]["source"].endswith("bad\\xffname")


def test_a_git_bomb_is_cut_off_as_it_is_archived(tmp_path):
    """A tree that names the same subtree ten times, five levels deep: a few KiB of repository, 100,000 files."""
    repo = tmp_path / "bomb"
    def git(*args, data=None):
        return subprocess.run(["git", "-C", str(repo), *args], input=data, capture_output=True, check=True,
                              env=GIT_ENV).stdout.strip().decode()

    repo.mkdir()
    git("init", "-q")
    blob = git("hash-object", "-w", "--stdin", data=b"x" * 1024)
    entry = f"100644 blob {blob}\t"
    for _ in range(5):
        tree = git("mktree", data="".join(f"{entry}{n}\n" for n in range(10)).encode())
        entry = f"040000 tree {tree}\t"
    top = git("mktree", data=f"040000 tree {tree}\texercises\n".encode())
    commit = git("commit-tree", top, "-m", "bomb")
    git("update-ref", "refs/heads/master", commit)
    git("symbolic-ref", "HEAD", "refs/heads/master")
    (repo / "exercises").mkdir()
    taken = grading.take(str(repo), 0, tmp_path / "work", catalogue.load(ROOT))
    assert taken.status == grading.REJECTED and "over the limit" in taken.reason, taken.reason
    assert not any((tmp_path / "work").rglob("*.tar"))
