"""Binder launch links for a course checkout.

`binder_url` turns a GitHub remote into a mybinder.org link that opens the
welcome notebook in full JupyterLab; `origin_binder_url` does it for the
``origin`` remote and current branch of a local clone (a learner's own fork).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import quote

__all__ = ["binder_url", "origin_binder_url"]

BINDER = "https://mybinder.org/v2/gh"
WELCOME = "notebooks/00_welcome.ipynb"

# ORG and REPO as GitHub allows them: letters, digits, '-', '_' and '.'.
_ORG = r"[A-Za-z0-9][A-Za-z0-9_-]*"
_REPO = r"[A-Za-z0-9._-]+"
_PATH = rf"(?P<org>{_ORG})/(?P<repo>{_REPO})/?"
_REMOTES = (
    # https://github.com/ORG/REPO(.git)(/), also http:// and https://user@github.com/
    re.compile(rf"^https?://(?:[^@/]+@)?(?:www\.)?github\.com(?::443)?/{_PATH}$", re.I),
    # git@github.com:ORG/REPO(.git)
    re.compile(rf"^(?:[\w.-]+@)?github\.com:/?{_PATH}$", re.I),
    # ssh://git@github.com/ORG/REPO(.git), git://github.com/ORG/REPO
    re.compile(rf"^(?:ssh|git|git\+ssh)://(?:[\w.-]+@)?github\.com(?::\d+)?/{_PATH}$", re.I),
)


def _org_repo(remote_url: str) -> tuple[str, str]:
    url = remote_url.strip()
    for pattern in _REMOTES:
        m = pattern.match(url)
        if m:
            org, repo = m["org"], m["repo"]
            if repo.endswith(".git"):
                repo = repo[: -len(".git")]
            if repo and repo not in (".", ".."):
                return org, repo
    raise ValueError(
        f"not a GitHub remote: {remote_url!r}; Binder links are made for GitHub "
        "repositories (https://github.com/ORG/REPO, git@github.com:ORG/REPO.git "
        "or ssh://git@github.com/ORG/REPO)"
    )


def binder_url(remote_url: str, ref: str = "main", notebook: str = WELCOME) -> str:
    """The mybinder.org link that opens `notebook` in JupyterLab for a GitHub remote.

    >>> binder_url("git@github.com:factorlab/factorlab.git")
    'https://mybinder.org/v2/gh/factorlab/factorlab/main?urlpath=lab/tree/notebooks/00_welcome.ipynb'

    Raises ValueError for a remote that is not on GitHub, or an empty ref.
    """
    org, repo = _org_repo(remote_url)
    ref = ref.strip()
    if not ref:
        raise ValueError("empty git ref: name a branch, tag or commit for the Binder link")
    notebook = notebook.strip().lstrip("/")
    return (
        f"{BINDER}/{org}/{repo}/{quote(ref, safe='')}"
        f"?urlpath=lab/tree/{quote(notebook, safe='/')}"
    )


def _git(repo_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "-C", str(repo_dir), *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=30,
        )
    except FileNotFoundError:
        raise ValueError("git is not installed or not on PATH") from None
    except subprocess.TimeoutExpired:
        raise ValueError(f"git {' '.join(args)} timed out in {repo_dir}") from None


def origin_binder_url(repo_dir: str | Path = ".") -> str:
    """The Binder link for the ``origin`` remote and current branch of `repo_dir`.

    Raises ValueError when `repo_dir` is not a git checkout, has no origin
    remote, origin is not on GitHub, or HEAD is detached.
    """
    return binder_url(*origin_and_branch(repo_dir))


def origin_and_branch(repo_dir: str | Path = ".") -> tuple[str, str]:
    """The URL of the ``origin`` remote and the current branch of `repo_dir` (also used by factorlab.hub).

    Raises ValueError when `repo_dir` is not a git checkout, has no origin
    remote, or HEAD is detached.
    """
    repo_dir = Path(repo_dir)
    inside = _git(repo_dir, "rev-parse", "--is-inside-work-tree")
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        raise ValueError(f"not a git checkout: {repo_dir}")

    origin = _git(repo_dir, "remote", "get-url", "origin")
    if origin.returncode != 0 or not origin.stdout.strip():
        detail = re.sub(r"^(error|fatal): ", "", origin.stderr.strip()) or "origin has no URL"
        raise ValueError(
            f"no origin remote: {detail.rstrip('.')}; push your fork to GitHub and add it with "
            "`git remote add origin https://github.com/YOU/REPO.git`"
        )

    # symbolic-ref works on a branch with no commits yet; rev-parse would not.
    branch = _git(repo_dir, "symbolic-ref", "--quiet", "--short", "HEAD")
    if branch.returncode != 0 or not branch.stdout.strip():
        raise ValueError(
            "HEAD is detached: check out the branch you pushed (e.g. `git switch main`)"
        )
    return origin.stdout.strip(), branch.stdout.strip()
