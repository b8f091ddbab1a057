"""Factor XI's machinery: log files found by reading the code as code (and the Procfile and config files), a
stream read as events, the paths and values an event names, and a quoted line with what varies named (the checks'
behaviour is proven against mutants, tests/mutants/11_logs.toml)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from factorlab.checks.logs import Stream, _is_path, _quote, event_of, level_of, log_files


def _app(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "shortly.py").write_text("import logging\nimport sys\n\nlog = logging.getLogger('shortly')\n")
    (folder / "Procfile").write_text("web: gunicorn --bind 0.0.0.0:$PORT shortly:app\nworker: python worker.py\n")
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize("files", [
    {"shortly.py": "from logging.handlers import RotatingFileHandler\nRotatingFileHandler('shortly.log')\n"},
    {"shortly.py": "import logging.handlers as lh\nh = lh.TimedRotatingFileHandler('x.log', when='D')\n"},
    {"shortly.py": "import logging\nlogging.basicConfig(filename='app.log', level=logging.INFO)\n"},
    {"shortly.py": "import logging\nlogging.getLogger().addHandler(logging.FileHandler(filename='a.log'))\n"},
    {"shortly.py": "import logging\nlogging.StreamHandler(open('events.log', 'a'))\n"},
    {"shortly.py": "import logging\nout = open('events.log', 'a')\nlogging.StreamHandler(out)\n"},
    {"shortly.py": "import logging.config\nlogging.config.dictConfig({'version': 1, 'handlers': {'f': {"
                   "'class': 'logging.handlers.WatchedFileHandler', 'filename': 'x.log'}}})\n"},
    {"shortly.py": "import logging.config\nCONFIG = {'version': 1, 'handlers': {'f': {'filename': 'x.log'}}}\n"
                   "logging.config.dictConfig(CONFIG)\n"},
    {"shortly.py": "import logging.config\nlogging.config.fileConfig('logging.ini')\n"},
    {"shortly.py": "import structlog\nstructlog.configure(logger_factory=structlog.WriteLoggerFactory("
                   "file=open('e.log', 'a')))\n"},
    {"shortly.py": "import logging\nclass Mine(logging.FileHandler):\n    pass\n"},
    {"shortly.py": "import sys\nsys.stdout = open('out.log', 'a')\n"},
    {"worker.py": "import contextlib\nwith contextlib.redirect_stdout(open('w.log', 'w')):\n    pass\n"},
    {"logging.ini": "[handler_file]\nclass=FileHandler\nargs=('app.log',)\n"},
    {"gunicorn.conf.py": "accesslog = 'access.log'\n"},
    {"Procfile": "web: gunicorn --access-logfile access.log --bind 0.0.0.0:$PORT shortly:app\n"},
    {"Procfile": "web: gunicorn --error-logfile=/var/log/err.log --bind 0.0.0.0:$PORT shortly:app\n"},
    {"Procfile": "web: gunicorn --bind 0.0.0.0:$PORT shortly:app >> web.log 2>&1\n"},
    {"Procfile": "worker: python worker.py 2>&1 | tee -a worker.log\n"},
    {"shortly.py": "import os, tempfile, traceback\nERRORS = open(os.path.join(tempfile.gettempdir(), 'e.txt'), 'a')\n"
                   "traceback.print_exc(file=ERRORS)\n"},
    {"shortly.py": "from pathlib import Path\nwith Path('/var/log/shortly/app.log').open('w') as f:\n    f.write('x')\n"},
    {"worker.py": "import io\nio.open('logs/worker.txt', mode='w').write('started')\n"},
    {"Procfile": "worker: python worker.py |& tee -a /tmp/worker.log\n"},
    {"config/gunicorn.py": "accesslog = '/tmp/access.log'\n"},
    {"gunicorn.conf.py": "import os, tempfile\nerrorlog = os.path.join(tempfile.gettempdir(), 'e.log')\n"},
    {"gunicorn.conf.py": "logconfig_dict = {'version': 1, 'handlers': {'k': {'class': 'logging.handlers."
                         "RotatingFileHandler', 'filename': 'g.log'}}}\n"},
    {"logconf.py": "KEEP = {'version': 1, 'handlers': {'disk': {'class': 'logging.handlers.WatchedFileHandler', "
                   "'filename': 'e.jsonl'}}}\n"},
    {"shortly.py": "import os, sys\nfd = os.open('out.txt', os.O_WRONLY | os.O_CREAT)\nos.dup2(fd, sys.stdout.fileno())\n"},
    {"shortly.py": "import os\nos.open('events.txt', os.O_WRONLY | os.O_CREAT | os.O_APPEND)\n"},
    {"shortly.py": "import logging.handlers\nlogging.handlers.SysLogHandler(address=('127.0.0.1', 514))\n"},
], ids=["rotating", "aliased-module", "basic-config", "file-handler-keyword", "stream-on-open", "stream-on-name",
        "dict-config-class", "dict-config-name", "file-config", "structlog-file", "subclass", "stdout-reassigned",
        "redirect-stdout", "ini-file", "gunicorn-conf", "access-logfile", "error-logfile-equals", "procfile-append",
        "procfile-tee", "opened-to-append", "path-named-log", "log-folder", "procfile-tee-both", "gunicorn-settings-file",
        "gunicorn-computed-path", "gunicorn-logconfig-dict", "config-dict-elsewhere", "dup2-stdout", "os-open-append",
        "syslog"])
def test_a_log_file_is_found_however_it_is_spelled(tmp_path, files):
    assert log_files(_app(tmp_path, files)), files


@pytest.mark.parametrize("files", [
    {"shortly.py": "import logging, sys\nlogging.getLogger().addHandler(logging.StreamHandler(sys.stdout))\n"},
    {"shortly.py": "import logging\nlogging.basicConfig(level=logging.INFO)\n"},
    {"shortly.py": "import structlog, sys\nstructlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stdout))\n"},
    {"shortly.py": "import structlog\nstructlog.configure(logger_factory=structlog.WriteLoggerFactory())\n"},
    {"shortly.py": "import logging.config, sys\nlogging.config.dictConfig({'version': 1, 'handlers': {'out': {"
                   "'class': 'logging.StreamHandler', 'stream': 'ext://sys.stdout'}}})\n"},
    {"shortly.py": "with open('links.csv', 'w') as f:\n    f.write('code,url')\n"},
    {"release.py": "with open('deploy-history.txt', 'a') as f:\n    f.write('v1')\n"},
    {"shortly.py": "import logging, sys\nlogging.StreamHandler(open(sys.stdout.fileno(), 'w', buffering=1, closefd=False))\n"},
    {"gunicorn.conf.py": "accesslog = '-'\nerrorlog = '/dev/stderr'\nlogconfig = 'logging.ini'\n"},
    {"Procfile": "web: gunicorn --error-logfile /dev/stdout --bind 0.0.0.0:$PORT shortly:app\n"},
    {"Procfile": "web: gunicorn --access-logfile - --error-logfile - --bind 0.0.0.0:$PORT shortly:app\n"
                 "worker: python worker.py 2>&1\n"},
    {"OPS.md": "There is no FileHandler any more: read the stream with `honcho start | tee session.log`.\n"},
], ids=["stream-stdout", "basic-config-stderr", "structlog-print", "structlog-write-default", "dict-config-stream",
        "a-data-file", "the-deploy-tool", "stdout-reopened", "gunicorn-streams", "dev-stdout", "procfile-dashes",
        "runbook-prose"])
def test_logging_to_the_stream_is_left_alone(tmp_path, files):
    assert log_files(_app(tmp_path, files)) == []


@pytest.mark.parametrize("line, missing", [
    ('{"event": "request", "level": "info", "timestamp": "2026-12-03T09:00:00Z"}', ""),
    ('{"message": "request", "severity": "INFO", "time": 1733216400.5}', ""),
    ('{"msg": "x", "log": {"level": "warn"}, "@timestamp": "2026-12-03T09:00:00Z"}', ""),
    ('{"created": 1733216400.5, "levelname": "INFO", "name": "shortly", "message": "x"}', ""),
    ('{"text": "x", "record": {"time": {"timestamp": 1.5}, "level": {"name": "INFO", "no": 20}, "message": "x"}}', ""),
    ('{"@timestamp": "t", "log.level": "info", "message": "x", "url": {"path": "/"}}', ""),
    ('{"event": "request", "timestamp": "2026-12-03T09:00:00Z"}', "a level"),
    ('{"event": "request", "level": "info"}', "a time"),
    ('{"level": "info", "timestamp": "t", "event": ""}', "an event or message"),
    ('{"event": "x", "level": "chatty", "timestamp": "t"}', "a level"),
])
def test_an_event_is_a_json_object_with_a_time_a_level_and_what_happened(line, missing):
    event, lacks = event_of(line)
    assert (event is not None) == (not missing) and lacks == missing


@pytest.mark.parametrize("line", ["[2026-12-03 09:00:00 +0000] [12] [INFO] Booting worker", '["a", "list"]',
                                  "{not json", "", "event=request level=info"])
def test_other_lines_are_not_events(line):
    assert event_of(line) == (None, "")


def test_levels_are_read_by_name_or_number():
    assert [level_of({"level": v}) for v in ("ERROR", "warning", "critical", 40, "debug")] == [40, 30, 50, 40, 10]
    assert level_of({"level": True}) is None and level_of({}) is None


@pytest.mark.parametrize("value", ["/stats/abc", "/stats/abc?x=1", "http://127.0.0.1:8000/stats/abc",
                                   "GET /stats/abc HTTP/1.1", "GET /stats/abc", "127.0.0.1 GET /stats/abc HTTP/1.1",
                                   "Exception on /stats/abc [GET]"])
def test_a_request_path_is_found_in_its_usual_spellings(value):
    assert _is_path(value, "/stats/abc")


@pytest.mark.parametrize("value", ["/stats/abcd", "/stats", "see /stats/abc.", "abc", "/abc/stats/abc", 200, None])
def test_other_values_are_not_the_path(value):
    assert not _is_path(value, "/stats/abc")


def test_a_stream_counts_events_by_field_and_finds_lines_that_are_not_events():
    lines = [json.dumps({"event": "request", "path": "/abc", "level": "info", "timestamp": "t"}),
             json.dumps({"event": "preview stored", "fields": {"code": "abc"}, "level": "info", "timestamp": "t"}),
             json.dumps({"event": "Exception on /abc [GET]", "level": "error", "timestamp": "t",
                         "exception": "Traceback ...\nboom: abc refused"}),
             "12:00:00 previews: shortly.fetch_preview('abc') (job)",
             '{"event": "half", "timestamp": "t"}']
    stream = Stream("web", "\n".join(lines))
    assert len(stream.events) == 3 and len(stream.incomplete) == 1
    assert len(stream.about_path("/abc")) == 2  # the request, and Flask's error event naming its path
    assert len(stream.about("abc")) == 1  # a field that is the code itself, nested or not
    assert len(stream.mentioning("boom: abc refused")) == 1
    assert stream.not_events("abc") == [lines[3]]


def test_a_quoted_line_names_what_varies():
    line = "[2026-12-03 14:14:53 +0000] [3845] [INFO] job 5f0c1e2a-1111-2222-3333-444455556666 for Xy12Ab, pid: 3897"
    assert _quote(line, {"Xy12Ab": "<code>"}) == "[<date><time> +0000] [<pid>] [INFO] job <id> for <code>, pid: <pid>"
