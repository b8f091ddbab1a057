"""Procfiles as platforms read them: `name: command` lines, comments and blank lines skipped, mistakes said."""

import pytest

from factorlab import procfile


def test_process_types_in_order_with_their_command_lines():
    text = ("# Shortly's processes\n\nweb: gunicorn --bind 0.0.0.0:$PORT shortly:app   \n"
            "worker:python -m worker --burst\nrelease_2-x: python release.py\n")
    assert procfile.parse(text) == {"web": "gunicorn --bind 0.0.0.0:$PORT shortly:app",
                                    "worker": "python -m worker --burst", "release_2-x": "python release.py"}
    assert list(procfile.parse(text)) == ["web", "worker", "release_2-x"]


@pytest.mark.parametrize("text, said", [
    ("web gunicorn shortly:app\n", "line 1 is not `name: command`"),
    ("web:\n", "line 1 is not `name: command`"),
    ("\nweb server: gunicorn shortly:app\n", "line 2 is not `name: command`"),
    ("web: a\nweb: b\n", "names the process type 'web' twice"),
])
def test_a_malformed_procfile_is_an_error_with_its_line(text, said):
    with pytest.raises(procfile.ProcfileError, match=said):
        procfile.parse(text)


def test_a_missing_type_or_file_is_said(tmp_path):
    with pytest.raises(procfile.ProcfileError, match="there is no Procfile"):
        procfile.command(tmp_path, "web")
    (tmp_path / "Procfile").write_text("worker: python worker.py\n")
    with pytest.raises(procfile.ProcfileError, match=r"no `web:` line \(its process types: worker\)"):
        procfile.command(tmp_path, "web")
    (tmp_path / "Procfile").write_bytes(b"web: \xff\n")
    with pytest.raises(procfile.ProcfileError, match="not UTF-8"):
        procfile.command(tmp_path, "web")
