"""JupyterHub links for a course checkout, made for nbgitpuller.

`hub_url` makes the link a teacher hands out: clicking it logs the learner in to
the hub, clones the course into their home folder (or, on later clicks, merges
the newest commits into their copy: docs/hub.md says how) and opens the welcome
notebook in JupyterLab. `origin_hub_url` does it for the ``origin`` remote and
current branch of a local clone.

A hub clones anonymously, so the link always names an https URL: an ssh remote
(``git@host:org/repo.git``, ``ssh://git@host/org/repo``) is turned into its
https form on the same host, and any user name or token in an https remote is
left out. nbgitpuller clones into a folder named after the last part of that URL;
when the URL ends in ``.git`` the link adds ``targetpath`` so that the folder is
the repository's name all the same, and ``urlpath`` points into it.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote, urlsplit

from .binder import WELCOME, origin_and_branch

__all__ = ["hub_url", "https_remote", "origin_hub_url"]

# A host name (labels of letters, digits and '-'), an IPv4 address, or an IPv6 one in brackets.
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                   r"|\[[0-9A-Fa-f:.]+\])$")
# One segment of a path as forges and hubs spell them.
_SEGMENT = re.compile(r"^[A-Za-z0-9._~-]+$")
# [user@]host:path, which git reads as ssh only when no '/' comes before the first ':'.
_SCP = re.compile(r"^(?:(?P<user>[^@/:\s]+)@)?(?P<host>[^@/:\s]+):(?P<path>[^\s]+)$")
# ssh endpoints whose web (https) host has another name.
_SSH_TO_HTTPS_HOST = {"ssh.github.com": "github.com", "altssh.gitlab.com": "gitlab.com"}
# ssh endpoints whose https URL has a different path, which cannot be worked out from the ssh one.
_SSH_ONLY = ("ssh.dev.azure.com", "vs-ssh.visualstudio.com")
# Hosts where a repository is exactly OWNER/REPO.
_TWO_SEGMENTS = ("github.com", "bitbucket.org")
EXPECTED_REMOTE = "expected https://HOST/OWNER/REPO(.git), git@HOST:OWNER/REPO.git or ssh://git@HOST/OWNER/REPO"
EXPECTED_HUB = "expected the hub's address, such as hub.example.edu or https://hub.example.edu/"


def _hub_base(hub: str) -> str:
    """The hub's base URL, ending in '/': https:// unless http:// is written, path prefix kept."""
    text = hub.strip()
    if not text:
        raise ValueError(f"empty hub address: {EXPECTED_HUB}")
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError(f"not a hub address: {hub!r}: {EXPECTED_HUB}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"not a hub address: {hub!r}: a hub is reached over https (or http); {EXPECTED_HUB}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"not a hub address: {hub!r}: leave the user name and password out of it; {EXPECTED_HUB}")
    host = _host(parts.hostname)
    segments = [s for s in parts.path.split("/") if s]
    # A hub's pages are under BASE/hub/ and BASE/user/NAME/: of an address copied from the browser, keep BASE.
    page = next((i for i, s in enumerate(segments) if s in ("hub", "user")), None)
    if page is not None:
        segments = segments[:page]
    if not host or not _HOST.match(host) or (page is None and (parts.query or parts.fragment)) \
            or any(not _SEGMENT.match(s) for s in segments):
        raise ValueError(f"not a hub address: {hub!r}: {EXPECTED_HUB}")
    netloc = host + (f":{port}" if port is not None else "")
    return f"{parts.scheme.lower()}://{netloc}/" + "".join(f"{s}/" for s in segments)


def _host(hostname: str | None) -> str:
    """urlsplit's hostname (lower case, an IPv6 address without its brackets) as a URL spells it."""
    if not hostname:
        return ""
    return f"[{hostname}]" if ":" in hostname else hostname


def _repo_path(path: str, remote_url: str) -> list[str]:
    segments = [s for s in path.strip("/").split("/") if s]
    if len(segments) < 2 or any(s in (".", "..", "-") or not _SEGMENT.match(s) for s in segments):
        raise ValueError(f"not a repository URL: {remote_url!r}: {EXPECTED_REMOTE}")
    return segments


def https_remote(remote_url: str) -> tuple[str, str]:
    """(the https URL a hub can clone anonymously, the repository's name) for a git remote.

    >>> https_remote("git@gitlab.com:course/factorlab.git")
    ('https://gitlab.com/course/factorlab.git', 'factorlab')

    Accepts https URLs on any host (GitHub, GitLab, Gitea, ...), scp-like ssh remotes
    (git@HOST:OWNER/REPO) and ssh:// URLs; an ssh remote becomes https on the same host
    (its ssh port dropped). Raises ValueError for anything else: http://, git://,
    file:// and local paths, which a hub cannot (or should not) pull from.
    """
    url = remote_url.strip()
    if not url:
        raise ValueError(f"empty remote URL: {EXPECTED_REMOTE}")
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", url)
    if scheme:
        kind = scheme[1].lower()
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ValueError(f"not a repository URL: {remote_url!r}: {EXPECTED_REMOTE}") from None
        if kind == "http":
            raise ValueError(f"not an https remote: {remote_url!r}: a hub should clone over https, "
                             "so use the https:// form of this URL")
        if kind not in ("https", "ssh", "git+ssh", "ssh+git"):
            raise ValueError(f"not an https or ssh remote: {remote_url!r}: a hub clones the course from a "
                             f"git host over https; {EXPECTED_REMOTE}")
        host, path = _host(parts.hostname), parts.path
        if parts.query or parts.fragment:
            raise ValueError(f"not a repository URL: {remote_url!r}: {EXPECTED_REMOTE}")
        keep_port = kind == "https" and port is not None
    else:
        m = _SCP.match(url)
        if not m or ("." not in m["host"] and not m["user"] and m["host"] != "localhost"):
            raise ValueError(f"not an https or ssh remote: {remote_url!r}: a hub clones the course from a "
                             f"git host, not from a folder; {EXPECTED_REMOTE}")
        kind, host, path, keep_port = "ssh", m["host"].lower(), m["path"], False
    if not host or not _HOST.match(host):
        raise ValueError(f"not a repository URL: {remote_url!r}: {EXPECTED_REMOTE}")
    if kind != "https":
        if host in _SSH_ONLY:
            raise ValueError(f"cannot tell the https URL of {remote_url!r}: give the repository's https URL "
                             "(its clone URL) instead")
        host = _SSH_TO_HTTPS_HOST.get(host, host)
    if path.lstrip("/").startswith("~"):
        raise ValueError(f"not a repository URL: {remote_url!r}: a ~user path has no https form; {EXPECTED_REMOTE}")
    segments = _repo_path(path, remote_url)
    if host.removeprefix("www.") in _TWO_SEGMENTS and len(segments) != 2:
        raise ValueError(f"not a repository URL: {remote_url!r}: on {host.removeprefix('www.')} a repository "
                         "is https://HOST/OWNER/REPO")
    name = segments[-1].removesuffix(".git")
    if not name or name in (".", ".."):
        raise ValueError(f"not a repository URL: {remote_url!r}: {EXPECTED_REMOTE}")
    netloc = host + (f":{port}" if keep_port else "")
    return f"https://{netloc}/" + "/".join(segments), name


def hub_url(hub: str, remote_url: str, ref: str = "main", notebook: str = WELCOME) -> str:
    """The nbgitpuller link that opens `notebook` of the course at `remote_url` (branch `ref`) on `hub`.

    >>> hub_url("hub.example.edu", "git@github.com:factorlab/factorlab.git")  # doctest: +NORMALIZE_WHITESPACE
    'https://hub.example.edu/hub/user-redirect/git-pull?repo=https%3A%2F%2Fgithub.com%2Ffactorlab%2Ffactorlab.git&branch=main&urlpath=lab/tree/factorlab/notebooks/00_welcome.ipynb&targetpath=factorlab'

    `hub` is hub.example.edu or https://hub.example.edu/ (http:// too; a path prefix,
    such as https://example.edu/jupyter/, is kept). Raises ValueError for a hub address
    that is not http(s), a remote a hub cannot clone over https (see https_remote), or
    an empty ref.
    """
    base = _hub_base(hub)
    repo, name = https_remote(remote_url)
    ref = ref.strip()
    if not ref:
        raise ValueError("empty git ref: name the branch the hub should pull")
    notebook = notebook.strip().lstrip("/")
    query = [("repo", quote(repo, safe="")), ("branch", quote(ref, safe="")),
             ("urlpath", quote(f"lab/tree/{name}/{notebook}", safe="/"))]
    if repo.rsplit("/", 1)[-1] != name:
        query.append(("targetpath", quote(name, safe="")))
    return f"{base}hub/user-redirect/git-pull?" + "&".join(f"{key}={value}" for key, value in query)


def origin_hub_url(repo_dir: str | Path, hub: str) -> str:
    """The hub link for the ``origin`` remote and current branch of `repo_dir`.

    Raises ValueError when `hub` is not a hub address, `repo_dir` is not a git checkout,
    has no origin remote or a detached HEAD, or origin cannot be cloned over https.
    """
    _hub_base(hub)  # a bad address is named before git is asked anything
    remote, branch = origin_and_branch(repo_dir)
    return hub_url(hub, remote, ref=branch)
