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
])
def test_connection_details_are_found(tmp_path, code):
    assert scan(tmp_path, code)


@pytest.mark.parametrize("code", [
    'import os\nengine = create_engine(os.environ.get("DATABASE_URL") or "sqlite:///shortly.db")\n',
    'cache = redis.Redis.from_url(os.environ["REDIS_URL"]) if os.environ.get("REDIS_URL") else None\n',
    'app.run(host="127.0.0.1", port=5000)\n',  # the app's own port is factor VII's business, not a backing service
    '"""Set DATABASE_URL, e.g. to a postgresql URL, to attach a database."""\n',
])
def test_config_driven_code_passes(tmp_path, code):
    assert scan(tmp_path, code) == []
