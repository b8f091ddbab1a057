"""Backing services attached for a check: a new PostgreSQL database, a private Redis, the setup command.

Real servers, made for the check and gone after it: a database in the cluster of `factorlab services up`
(or a private one), Redis servers of the check's own.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Iterator

from .. import procfile, services
from ..process import wait_until
from ..runners import AppFailed
from . import CheckContext, CheckFailed
from .app import REQUIRED_APP_ENV, SETUP, SETUP_TEXT
from .source import python_files, string_values
from .text import tail


@contextmanager
def postgres_database(ctx: CheckContext, prefix: str = "check") -> Iterator[tuple[services.Postgres, str]]:
    """(the server, the URL of a brand-new, empty database), dropped afterwards."""
    server = services.shared_postgres(ctx.course_root)
    url = server.create_database(prefix)
    try:
        yield server, url
    finally:
        server.drop_database(url)


@contextmanager
def redis_server(password: str | None = None) -> Iterator[services.Redis]:
    """A private Redis for the check (with a password, the app must take it from the URL)."""
    server = services.Redis.start(password=password)
    try:
        yield server
    finally:
        server.stop()


def postgres_codes(server: services.Postgres, url: str) -> set[str]:
    """The link codes in the links table of a PostgreSQL database (empty when there is no table). Any other error
    (the server does not answer) is raised: it is not the learner's."""
    from psycopg2 import errors

    try:
        return {row[0] for row in server.rows(url, "SELECT code FROM links")}
    except errors.UndefinedTable:
        return set()


def has_setup_command(ctx: CheckContext) -> bool:
    """Does the app define the documented setup command (`init-db`, from factor IV on)? Read from the code:
    a command registered under that name, or a function init_db that click names so."""
    for path in python_files(ctx.path):
        for value in string_values(path):
            if value == "init-db":
                return True
        if re.search(r"^\s*def init_db\(", path.read_text(errors="replace"), re.M):
            return True
    return False


def set_up(ctx: CheckContext, env: dict[str, str]) -> None:
    """Run the state's documented one-off setup against the database env names, as an operator would before
    the first start; a state without the command (before factor IV) sets up its database by itself."""
    if not has_setup_command(ctx):
        return
    done = ctx.runner.run_command(SETUP, env)
    if done.code != 0:
        raise CheckFailed(f"Seen: `{SETUP_TEXT}` on a new database {done.ended()}{tail(done.output)}\n"
                          "Expected: exit 0, with the tables created.")


def database_env(ctx: CheckContext, name: str = "app") -> dict[str, str]:
    """A new SQLite database in a folder the check and the app share, under both names states have used:
    SHORTLY_DATABASE (factor III) and DATABASE_URL (from factor IV on)."""
    path = ctx.runner.shared_dir() / f"{name}.db"
    return {"SHORTLY_DATABASE": str(path), "DATABASE_URL": f"sqlite:///{path}"}


def side_by_side(func, items) -> list:
    """func(item) for every item at once, each in a thread (runners take calls from two threads); the results
    in order. When one raises, all have ended before the first error (in order) is raised; what the others
    started, the runner stops with the check."""
    items = list(items)
    with ThreadPoolExecutor(max_workers=max(1, len(items)), thread_name_prefix="side by side") as pool:
        futures = [pool.submit(func, item) for item in items]
    return [future.result() for future in futures]


READY_WAIT = 15.0  # seconds for workers to be waiting on the queue before a check goes on regardless


def start_worker(ctx: CheckContext, env: dict[str, str]):
    """From factor VIII on, a Procfile's `worker` process runs the queued jobs (link previews): start one with env
    (it serves nothing). None when the Procfile declares no worker."""
    try:
        if procfile.WORKER not in procfile.read(ctx.path):
            return None
    except procfile.ProcfileError:
        return None
    return ctx.runner.start({**REQUIRED_APP_ENV, **env}, process_type=procfile.WORKER, listens=False)


def workers_waiting(redis: services.Redis, workers: list, timeout: float = READY_WAIT, give_up=None) -> bool:
    """Wait until the workers have started: each one blocked on the Redis waiting for a job (RQ's BLPOP, a
    home-made BRPOP), with the app's import (and whatever it does at start) behind it. A worker that polls never
    shows so: then the wait ends after timeout, or as soon as a worker has exited (or give_up() holds). True if
    they all waited."""
    def waiting() -> int:
        try:
            with redis.client() as client:
                return sum("b" in entry.get("flags", "") for entry in client.client_list())
        except Exception:
            return 0

    wait_until(lambda: waiting() >= len(workers) or any(not w.running() for w in workers)
               or bool(give_up and give_up()), timeout, every=0.1)
    return waiting() >= len(workers)


def serve(ctx: CheckContext, env: dict[str, str] | None = None, **start):
    """Start the app as an operator would: with the config every state needs, a database of its own unless env
    names one, set up with the state's documented one-off command first."""
    env = {**REQUIRED_APP_ENV, **(env or {})}
    if "DATABASE_URL" not in env:
        env = {**database_env(ctx), **env}
    set_up(ctx, env)
    return ctx.runner.start(env, **start)


def procfile_types(ctx: CheckContext, required: tuple[str, ...] = (procfile.WEB, procfile.WORKER)) -> list[str]:
    """The Procfile's web and worker types that the app declares, in that order; CheckFailed when it has no
    Procfile or lacks a required line."""
    wanted = "Expected: a Procfile with a " + " and a ".join(required) + " line."
    try:
        declared = procfile.read(ctx.path)
    except procfile.ProcfileError as exc:
        raise CheckFailed(f"Seen: {exc}\n{wanted}") from None
    missing = [k for k in required if k not in declared]
    if missing:
        raise CheckFailed(f"Seen: the Procfile has no {' or '.join(missing)} line.\n{wanted}")
    return [k for k in (procfile.WEB, procfile.WORKER) if k in declared]


def start_types(ctx: CheckContext, env: dict[str, str], redis: services.Redis, kinds: list[str], expected: str) -> list:
    """The Procfile's process types kinds, started side by side with env (a web serving, a worker waiting for jobs
    on redis before this returns); CheckFailed naming the process that did not start (Expected: the <kind> process
    <expected>) or the worker that exited."""
    def start(kind: str):
        try:
            return ctx.runner.start(env, process_type=kind, listens=kind == procfile.WEB)
        except AppFailed as exc:
            raise CheckFailed(f"{exc}\n(the {kind} process, from the Procfile's `{kind}:` line)\nExpected: the "
                              f"{kind} process {expected}.") from None

    started = side_by_side(start, kinds)
    workers = [app for kind, app in zip(kinds, started) if kind == procfile.WORKER]
    if workers and not workers_waiting(redis, workers) and not workers[0].running():
        raise CheckFailed(f"Seen: the worker exited with code {workers[0].stop()}.{workers[0].last_words()}\n"
                          "Expected: the worker waits for jobs.")
    return started
