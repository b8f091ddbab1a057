"""Binder launch links: factorlab.binder."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from factorlab.binder import binder_url, origin_binder_url

WELCOME = "?urlpath=lab/tree/notebooks/00_welcome.ipynb"
LINK = "https://mybinder.org/v2/gh/factorlab/factorlab/main" + WELCOME


@pytest.mark.parametrize(
    "remote",
    [
        "https://github.com/factorlab/factorlab",
        "https://github.com/factorlab/factorlab.git",
        "https://github.com/factorlab/factorlab/",
        "https://github.com/factorlab/factorlab.git/",
        "http://github.com/factorlab/factorlab",
        "https://learner@github.com/factorlab/factorlab.git",
        "https://www.github.com/factorlab/factorlab",
        "git@github.com:factorlab/factorlab.git",
        "git@github.com:factorlab/factorlab",
        "ssh://git@github.com/factorlab/factorlab",
        "ssh://git@github.com/factorlab/factorlab.git",
        "ssh://git@github.com:22/factorlab/factorlab.git",
        "git://github.com/factorlab/factorlab.git",
        "  https://GitHub.com/factorlab/factorlab.git\n",
    ],
)
def test_github_remotes_give_the_launch_link(remote):
    assert binder_url(remote) == LINK


@pytest.mark.parametrize(
    ("remote", "org", "repo"),
    [
        ("https://github.com/Some-Org/my.course-2026.git", "Some-Org", "my.course-2026"),
        ("git@github.com:someone/factorlab_fork.git", "someone", "factorlab_fork"),
        ("ssh://git@github.com/x/.github", "x", ".github"),
    ],
)
def test_org_and_repo_are_kept_as_written(remote, org, repo):
    assert binder_url(remote) == f"https://mybinder.org/v2/gh/{org}/{repo}/main{WELCOME}"


def test_ref_and_notebook():
    assert binder_url("git@github.com:o/r.git", ref="v1.0") == (
        f"https://mybinder.org/v2/gh/o/r/v1.0{WELCOME}"
    )
    # a branch name with a slash is one path segment in a Binder link
    assert binder_url("git@github.com:o/r.git", ref="fix/typo").startswith(
        "https://mybinder.org/v2/gh/o/r/fix%2Ftypo?"
    )
    assert binder_url("git@github.com:o/r.git", notebook="notebooks/03_config.ipynb") == (
        "https://mybinder.org/v2/gh/o/r/main?urlpath=lab/tree/notebooks/03_config.ipynb"
    )


@pytest.mark.parametrize(
    "remote",
    [
        "https://gitlab.com/factorlab/factorlab.git",
        "git@gitlab.com:factorlab/factorlab.git",
        "https://bitbucket.org/factorlab/factorlab",
        "ssh://git@example.com/factorlab/factorlab",
        "https://github.com.example.com/factorlab/factorlab",
        "https://gist.github.com/factorlab/abc123",
        "https://github.com/factorlab",
        "https://github.com/factorlab/factorlab/tree/main",
        "/srv/git/factorlab.git",
        "file:///srv/git/factorlab.git",
        "../factorlab",
        "",
    ],
)
def test_non_github_remotes_are_refused(remote):
    with pytest.raises(ValueError, match="not a GitHub remote"):
        binder_url(remote)


def test_empty_ref_is_refused():
    with pytest.raises(ValueError, match="empty git ref"):
        binder_url("git@github.com:o/r.git", ref="  ")


# -- origin_binder_url on a real (temporary) git repository ----------------------

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(cwd, *args):
    subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, stdin=subprocess.DEVNULL
    )


@pytest.fixture
def repo(tmp_path):
    git(tmp_path, "init", "-q")
    git(tmp_path, "symbolic-ref", "HEAD", "refs/heads/main")  # whatever init.defaultBranch says
    return tmp_path


@needs_git
def test_origin_binder_url_uses_origin_and_current_branch(repo):
    git(repo, "remote", "add", "origin", "git@github.com:learner/factorlab.git")
    assert origin_binder_url(repo) == f"https://mybinder.org/v2/gh/learner/factorlab/main{WELCOME}"
    git(repo, "symbolic-ref", "HEAD", "refs/heads/my-work")
    assert origin_binder_url(str(repo)) == (
        f"https://mybinder.org/v2/gh/learner/factorlab/my-work{WELCOME}"
    )


@needs_git
def test_origin_binder_url_from_a_subdirectory(repo):
    git(repo, "remote", "add", "origin", "https://github.com/learner/factorlab")
    sub = repo / "notebooks"
    sub.mkdir()
    assert origin_binder_url(sub) == f"https://mybinder.org/v2/gh/learner/factorlab/main{WELCOME}"


@needs_git
def test_origin_binder_url_without_origin(repo):
    git(repo, "remote", "add", "upstream", "https://github.com/factorlab/factorlab")
    with pytest.raises(ValueError, match="^no origin remote: "):
        origin_binder_url(repo)


@needs_git
def test_origin_binder_url_with_a_non_github_origin(repo):
    git(repo, "remote", "add", "origin", "https://gitlab.com/learner/factorlab.git")
    with pytest.raises(ValueError, match="not a GitHub remote"):
        origin_binder_url(repo)


@needs_git
def test_origin_binder_url_on_a_detached_head(repo):
    git(repo, "remote", "add", "origin", "https://github.com/learner/factorlab")
    git(
        repo,
        "-c", "user.name=t", "-c", "user.email=t@example.invalid",
        "commit", "-q", "--allow-empty", "-m", "first",
    )
    git(repo, "checkout", "-q", "--detach")
    with pytest.raises(ValueError, match="detached"):
        origin_binder_url(repo)


@needs_git
def test_origin_binder_url_outside_a_checkout(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    with pytest.raises(ValueError, match="not a git checkout"):
        origin_binder_url(tmp_path)
