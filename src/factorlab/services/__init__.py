"""Backing services for the course: private, throwaway PostgreSQL and Redis servers on free loopback ports.

Real servers, never mocks, and no root or Docker needed, so the same thing works on a laptop, on Binder,
on a hub and in CI.

    programs.py   finding the server programs (and, as root, a user who may run PostgreSQL)
    server.py     a server on a loopback port, attached to this process or detached
    postgres.py   a PostgreSQL cluster: databases, rows, dump and restore
    redis.py      a Redis-compatible server
    detached.py   `factorlab services up|down|status`
    shared.py     the cluster the checks make their databases in
"""

from .detached import down, status, up, urls
from .postgres import Postgres
from .programs import ServiceFailed, ServiceMissing, postgres_bin, redis_server
from .redis import Redis
from .server import Server
from .shared import held, shared_postgres, stop_shared

__all__ = ["Postgres", "Redis", "Server", "ServiceFailed", "ServiceMissing", "down", "postgres_bin", "redis_server",
           "held", "shared_postgres", "status", "stop_shared", "up", "urls"]
