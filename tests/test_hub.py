"""JupyterHub links (factorlab.hub, `factorlab hub-link`), docs/hub.md and the autograding workflow template."""

from __future__ import annotations

import re
import shutil
import subprocess
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import ROOT, run_cli
from factorlab import catalogue
from factorlab.cli import parser
from factorlab.hub import hub_url, https_remote, origin_hub_url

GIT_PULL = "https://hub.example.edu/hub/user-redirect/git-pull"
WORKFLOW = ROOT / "docs" / "classroom" / "autograding.yml"
HUB_DOC = ROOT / "docs" / "hub.md"


def query(link: str) -> dict[str, str]:
    """The link's parameters as nbgitpuller reads them (decoded, one value each)."""
    params = parse_qs(urlsplit(link).query, keep_blank_values=True, strict_parsing=True)
    assert all(len(values) == 1 for values in params.values()), link
    return {key: values[0] for key, values in params.items()}


# -- hub_url -----------------------------------------------------------------------------------

def test_the_link_for_a_github_remote():
    assert hub_url("hub.example.edu", "https://github.com/factorlab/factorlab") == (
        f"{GIT_PULL}?repo=https%3A%2F%2Fgithub.com%2Ffactorlab%2Ffactorlab&branch=main"
        "&urlpath=lab/tree/factorlab/notebooks/00_welcome.ipynb"
    )


@pytest.mark.parametrize("hub", [
    "hub.example.edu", "https://hub.example.edu", "https://hub.example.edu/", "  HTTPS://Hub.Example.EDU/ \n",
    "https://hub.example.edu/hub/home", "https://hub.example.edu/hub/", "hub.example.edu/user/ada/lab/tree/x.ipynb",
    "https://hub.example.edu/hub/spawn?next=%2Fhub%2Fhome",
])
def test_hub_forms(hub):
    assert hub_url(hub, "https://github.com/o/r").startswith(GIT_PULL + "?")


@pytest.mark.parametrize(("hub", "base"), [
    ("http://localhost:8000", "http://localhost:8000/"),
    ("hub.example.edu:8443", "https://hub.example.edu:8443/"),
    ("https://example.edu/jupyter/", "https://example.edu/jupyter/"),
    ("https://example.edu/jupyter/hub/home", "https://example.edu/jupyter/"),
    ("http://[::1]:8000/", "http://[::1]:8000/"),
    ("https://10.0.0.5", "https://10.0.0.5/"),
])
def test_scheme_port_and_path_prefix_are_kept(hub, base):
    assert hub_url(hub, "https://github.com/o/r").startswith(f"{base}hub/user-redirect/git-pull?")


@pytest.mark.parametrize("hub", [
    "", "   ", "ftp://hub.example.edu", "file:///srv/hub", "javascript:alert(1)", "ssh://hub.example.edu",
    "https://ada:secret@hub.example.edu/", "hub example.edu", "https://hub.example.edu:99999/",
    "https://hub.example.edu/?next=x", "https://hub.example.edu/#top", "https://hub_example.edu/",
    "https://hub.example.edu/a b/",
])
def test_bad_hub_addresses_are_refused(hub):
    with pytest.raises(ValueError, match=r"(not a|empty) hub address"):
        hub_url(hub, "https://github.com/o/r")


def test_values_are_url_encoded():
    link = hub_url("hub.example.edu", "https://gitea.example.edu:3000/a-b/my.course_2026.git",
                   ref="fix/typo&more=1", notebook="/notebooks/03 config#1.ipynb")
    assert " " not in link and link.count("?") == 1 and "#" not in link
    assert "branch=fix%2Ftypo%26more%3D1" in link
    assert query(link) == {
        "repo": "https://gitea.example.edu:3000/a-b/my.course_2026.git",
        "branch": "fix/typo&more=1",
        "urlpath": "lab/tree/my.course_2026/notebooks/03 config#1.ipynb",
        "targetpath": "my.course_2026",
    }


def test_the_clone_folder_is_the_repository_name():
    # nbgitpuller names the folder after the last part of the URL: with .git, the link says which folder
    plain = query(hub_url("hub.example.edu", "https://github.com/o/factorlab"))
    assert "targetpath" not in plain and plain["urlpath"].startswith("lab/tree/factorlab/")
    dotgit = query(hub_url("hub.example.edu", "https://github.com/o/factorlab.git/"))
    assert dotgit["repo"] == "https://github.com/o/factorlab.git"
    assert dotgit["targetpath"] == "factorlab" and dotgit["urlpath"].startswith("lab/tree/factorlab/")


@pytest.mark.parametrize(("remote", "repo", "name"), [
    ("https://github.com/factorlab/factorlab.git", "https://github.com/factorlab/factorlab.git", "factorlab"),
    ("https://gitlab.com/school/2026/factorlab", "https://gitlab.com/school/2026/factorlab", "factorlab"),
    ("https://gitlab.example.edu/group/sub/course.git", "https://gitlab.example.edu/group/sub/course.git", "course"),
    ("https://codeberg.org/ada/factorlab.git", "https://codeberg.org/ada/factorlab.git", "factorlab"),
    ("https://gitea.example.edu:3000/org/repo/", "https://gitea.example.edu:3000/org/repo", "repo"),
    ("https://bitbucket.org/team/factorlab.git", "https://bitbucket.org/team/factorlab.git", "factorlab"),
    # credentials never go into a link: a hub clones anonymously
    ("https://ada:ghp_FAKE0123456789@github.com/ada/factorlab.git", "https://github.com/ada/factorlab.git",
     "factorlab"),
    ("https://oauth2:glpat-FAKE@gitlab.com/g/p.git", "https://gitlab.com/g/p.git", "p"),
    # ssh remotes become https on the same host, without the ssh port
    ("git@github.com:factorlab/factorlab.git", "https://github.com/factorlab/factorlab.git", "factorlab"),
    ("git@gitlab.com:group/sub/project.git", "https://gitlab.com/group/sub/project.git", "project"),
    ("git@gitlab.com:/group/project", "https://gitlab.com/group/project", "project"),
    ("gitea@git.example.edu:org/repo.git", "https://git.example.edu/org/repo.git", "repo"),
    ("ssh://git@github.com/o/r.git", "https://github.com/o/r.git", "r"),
    ("ssh://git@gitea.example.edu:2222/org/repo", "https://gitea.example.edu/org/repo", "repo"),
    ("git+ssh://git@gitlab.com/g/p.git", "https://gitlab.com/g/p.git", "p"),
    ("git@ssh.github.com:o/r.git", "https://github.com/o/r.git", "r"),
    ("ssh://git@altssh.gitlab.com:443/g/p.git", "https://gitlab.com/g/p.git", "p"),
    ("  git@GitHub.com:o/r.git\n", "https://github.com/o/r.git", "r"),
])
def test_remotes_become_anonymous_https(remote, repo, name):
    assert https_remote(remote) == (repo, name)
    assert query(hub_url("hub.example.edu", remote))["repo"] == repo


@pytest.mark.parametrize(("remote", "message"), [
    ("", "empty remote URL"),
    ("http://github.com/o/r.git", "not an https remote"),
    ("git://github.com/o/r.git", "not an https or ssh remote"),
    ("file:///srv/git/factorlab.git", "not an https or ssh remote"),
    ("ftp://example.edu/o/r.git", "not an https or ssh remote"),
    ("/srv/git/factorlab.git", "not an https or ssh remote"),
    ("../factorlab", "not an https or ssh remote"),
    ("factorlab:main", "not an https or ssh remote"),
    ("C:\\courses\\factorlab", "not an https or ssh remote"),
    ("https://github.com/factorlab", "not a repository URL"),
    ("https://github.com/factorlab/factorlab/tree/main", "not a repository URL"),
    ("https://gitlab.com/g/p/-/tree/main", "not a repository URL"),
    ("https://github.com/o/r?tab=readme", "not a repository URL"),
    ("https://github.com/o/.git", "not a repository URL"),
    ("https://github.com/o/../r", "not a repository URL"),
    ("git@example.edu:~ada/factorlab.git", "not a repository URL"),
    ("git@ssh.dev.azure.com:v3/org/project/repo", "cannot tell the https URL"),
])
def test_remotes_a_hub_cannot_clone_are_refused(remote, message):
    with pytest.raises(ValueError, match=message):
        hub_url("hub.example.edu", remote)


def test_empty_ref_is_refused():
    with pytest.raises(ValueError, match="empty git ref"):
        hub_url("hub.example.edu", "https://github.com/o/r", ref=" ")


# -- origin_hub_url and `factorlab hub-link` on a real (temporary) git repository ---------------

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, stdin=subprocess.DEVNULL)


@needs_git
def test_origin_hub_url_uses_origin_and_current_branch(tmp_path):
    git(tmp_path, "init", "-q")
    git(tmp_path, "symbolic-ref", "HEAD", "refs/heads/term-2026")
    git(tmp_path, "remote", "add", "origin", "git@gitlab.com:school/factorlab.git")
    assert query(origin_hub_url(tmp_path, "hub.example.edu")) == {
        "repo": "https://gitlab.com/school/factorlab.git", "branch": "term-2026",
        "urlpath": "lab/tree/factorlab/notebooks/00_welcome.ipynb", "targetpath": "factorlab",
    }
    with pytest.raises(ValueError, match="not a hub address"):
        origin_hub_url(tmp_path, "ftp://hub.example.edu")


@needs_git
def test_hub_link_prints_the_link_for_the_checkout(fake_course):
    root = fake_course.root
    git(root, "init", "-q")
    git(root, "symbolic-ref", "HEAD", "refs/heads/main")
    env = {"FACTORLAB_COURSE": str(root)}

    no_origin = run_cli("hub-link", "hub.example.edu", env=env, cwd=root)
    assert no_origin.returncode == 2 and no_origin.stdout == ""
    assert no_origin.stderr.startswith("factorlab: no origin remote: ") and no_origin.stderr.count("\n") == 1

    git(root, "remote", "add", "origin", "https://ada:FAKE-token@github.com/ada/factorlab")
    done = run_cli("hub-link", "https://hub.example.edu/", env=env, cwd=root)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (f"{GIT_PULL}?repo=https%3A%2F%2Fgithub.com%2Fada%2Ffactorlab&branch=main"
                           "&urlpath=lab/tree/factorlab/notebooks/00_welcome.ipynb\n")

    bad = run_cli("hub-link", "ftp://hub.example.edu", env=env, cwd=root)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("factorlab: not a hub address: ") and bad.stderr.count("\n") == 1

    git(root, "remote", "set-url", "origin", "/srv/git/factorlab.git")
    local = run_cli("hub-link", "hub.example.edu", env=env, cwd=root)
    assert local.returncode == 2 and "not an https or ssh remote" in local.stderr


# -- docs/hub.md and the autograding workflow ---------------------------------------------------

def subcommands() -> set[str]:
    import argparse

    actions = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return set(actions[0].choices)


def test_hub_link_is_a_subcommand_next_to_binder():
    assert {"binder", "hub-link"} <= subcommands()


def code_blocks(markdown: str) -> list[str]:
    return re.findall(r"(?ms)^ *```[^\n]*\n(.*?)^ *```", markdown)


def test_hub_doc_commands_name_real_subcommands():
    text = HUB_DOC.read_text()
    commands = [line.strip() for block in code_blocks(text) for line in block.splitlines()
                if line.strip().startswith("factorlab ")]
    assert commands, "docs/hub.md shows no factorlab command in a code block"
    unknown = [c for c in commands if c.split()[1] not in subcommands()]
    assert not unknown, f"docs/hub.md names commands factorlab does not have: {unknown}"
    # the example link is what hub-link makes
    example = re.search(r"(?m)^https://hub\.example\.edu/hub/user-redirect/git-pull\?\S+$", text)
    assert example and example[0] == hub_url("hub.example.edu", "https://github.com/ORG/factorlab")
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if "://" not in target:
            assert (HUB_DOC.parent / target).exists(), f"docs/hub.md links to a missing file: {target}"


@pytest.fixture(scope="module")
def workflow() -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(WORKFLOW.read_text())


def run_lines(workflow: dict) -> list[str]:
    return [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]


def test_workflow_is_a_github_actions_workflow(workflow):
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "push" in triggers
    check = workflow["jobs"]["check"]
    assert check["strategy"]["fail-fast"] is False
    uses = [step.get("uses", "") for job in workflow["jobs"].values() for step in job["steps"]]
    for action in ("actions/checkout@", "actions/setup-python@", "actions/upload-artifact@",
                   "actions/download-artifact@"):
        assert any(u.startswith(action) for u in uses), f"the workflow does not use {action}"
    assert any("GITHUB_STEP_SUMMARY" in run for run in run_lines(workflow))
    assert workflow["jobs"]["summary"]["needs"] == "check" and workflow["jobs"]["summary"]["if"] == "always()"


def test_workflow_needs_no_secrets_and_no_docker(workflow):
    text = WORKFLOW.read_text()
    assert "secrets." not in text
    for job in workflow["jobs"].values():
        assert "container" not in job and "services" not in job
    assert not any(re.search(r"\bdocker\b|--runner", run) for run in run_lines(workflow))


def test_workflow_checks_every_exercise_with_real_commands(workflow):
    course = catalogue.load(ROOT)
    exercises = workflow["jobs"]["check"]["strategy"]["matrix"]["exercise"]
    assert exercises == [ex.id for ex in course.exercises if ex.ready]
    # commands: at the start of a line or after && or ; (not the summary table's heading, "## factorlab checks")
    commands = [m for run in run_lines(workflow) for m in re.findall(r"(?m)(?:^\s*|&&\s*|;\s*)factorlab (\S+)", run)]
    assert commands and set(commands) <= subcommands()
    assert any(re.search(r"factorlab check \$\{\{ matrix\.exercise \}\} --json", run) for run in run_lines(workflow))
    install = " ".join(run_lines(workflow))
    assert "pip install -r requirements.txt" in install and "pip install -e ." in install


def test_workflow_python_agrees_with_environment_yml(workflow):
    pinned = re.search(r"(?m)^\s*-\s*python\s*=+\s*([0-9.]+)", (ROOT / "environment.yml").read_text())[1]
    versions = [step["with"]["python-version"] for job in workflow["jobs"].values() for step in job["steps"]
                if step.get("uses", "").startswith("actions/setup-python@")]
    assert versions and all(str(v) == pinned for v in versions), (versions, pinned)
