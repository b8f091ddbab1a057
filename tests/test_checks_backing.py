"""Factor IV's static check: connection details in code are found, config-driven code is not flagged."""

import textwrap

import pytest

from factorlab.checks.backing_services import connection_details


def scan(tmp_path, code: str) -> list[str]:
    (tmp_path / "shortly.py").write_text(textwrap.dedent(code))
    return connection_details(tmp_path)


@pytest.mark.parametrize("code", [
    'engine = create_engine("postgresql://shortly:FAKE@db.internal:5432/shortly")\n',
    'REDIS = "redis://cache.internal:6379/0"\n',
    'DATABASE = "/var/lib/shortly/shortly.db"\n',
    'URL = "sqlite:////var/lib/shortly/shortly.db"\n',
    'conn = psycopg2.connect(host="db.internal", dbname="shortly")\n',
    'cache = redis.Redis(host="cache.internal", port=6379)\n',
    'cache = redis.Redis("127.0.0.1", 6379)\n',
    'conn = psycopg2.connect("host=prod-db-1 dbname=shortly user=reports")\n',
    'REDIS_HOST = "localhost"\nREDIS_PORT = 6379\n',
    'URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")\n',
    # clients left to their own default address, sockets, sqlalchemy's URL.create
    'import redis\ncache = redis.Redis()\n',
    'import redis\noptions = dict(decode_responses=True)\ncache = redis.Redis(**options)\n',
    'from redis import ConnectionPool\npool = ConnectionPool(max_connections=4)\n',
    'import redis\ncache = redis.Redis(unix_socket_path="/var/run/redis/redis-server.sock")\n',
    'from sqlalchemy import URL\nurl = URL.create("postgresql", username="reports", host="prod-db-1")\n',
    # addresses built from constants
    'import os\nURL = "sqlite:///" + os.path.join("/var/lib/shortly", "shortly.db")\n',
    'DATA = "/var/lib/shortly"\nURL = f"sqlite:///{DATA}/shortly.db"\n',
    'from pathlib import Path\nDATABASE = Path("/var/lib/shortly") / "shortly.db"\n',
    'URL = "redis://{}:6379/0".format(host)\n',
    'URL = f"postgresql://{user}@prod-db-1/shortly"\n',
    # a host constant that goes to a database, though it also serves the app
    'DB_HOST = "127.0.0.1"\napp.run(host=DB_HOST)\nconn = psycopg2.connect(host=DB_HOST)\n',
])
def test_connection_details_are_found(tmp_path, code):
    assert scan(tmp_path, code)


@pytest.mark.parametrize("code", [
    'import os\nengine = create_engine(os.environ.get("DATABASE_URL") or "sqlite:///shortly.db")\n',
    'cache = redis.Redis.from_url(os.environ["REDIS_URL"]) if os.environ.get("REDIS_URL") else None\n',
    'app.run(host="127.0.0.1", port=5000)\n',  # the app's own port is factor VII's business, not a backing service
    '"""Set DATABASE_URL, e.g. to a postgresql URL, to attach a database."""\n',
    # a scheme alone, or a URL whose parts all come from elsewhere, names no service
    'if not URL.startswith(("sqlite://", "postgresql://")):\n    sys.exit("DATABASE_URL must start with postgresql://")\n',
    '"""REDIS_URL, e.g. redis://…"""\n',
    'URL = f"postgresql://{user}:{password}@{host}/{name}"\n',
    # the app's own bind address, wherever it is written
    'DEV_SERVER_HOST = "127.0.0.1"\napp.run(host=DEV_SERVER_HOST, port=5000)\n',
    # clients given their address, or options the code does not spell out
    'import redis\ncache = redis.Redis(connection_pool=pool)\n',
    'import redis\ncache = redis.Redis(**settings())\n',
    'from sqlalchemy import URL\nurl = URL.create("sqlite", database="shortly.db")\n',
    'import os\nHERE = os.path.dirname(__file__)\nURL = "sqlite:///" + os.path.join(HERE, "shortly.db")\n',
])
def test_config_driven_code_passes(tmp_path, code):
    assert scan(tmp_path, code) == []
