"""Results: text for the terminal, HTML for notebooks, JSON that follows the documented schema."""

import json
from pathlib import Path

import jsonschema
import pytest

from factorlab.results import CheckResult, Report

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" / "results.schema.json").read_text())


def report(*statuses):
    r = Report("03_config", "/x", "local")
    for i, status in enumerate(statuses):
        r.results.append(CheckResult(f"config.c{'abc'[i]}", "A <title>", 3, status, "seen & expected", "do <this>", 0.5))
    return r


def test_passes_only_when_every_check_passed():
    assert report("passed", "passed").passed
    assert not report("passed", "failed").passed
    assert not report("error").passed
    assert not report().passed


@pytest.mark.parametrize("statuses", [("passed",), ("passed", "failed"), ("error", "failed")])
def test_json_follows_the_schema(statuses):
    jsonschema.validate(json.loads(report(*statuses).to_json()), SCHEMA)


def test_the_schema_rejects_an_unknown_status():
    data = json.loads(report("passed").to_json())
    data["results"][0]["status"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, SCHEMA)


def test_html_escapes_and_shows_hints_only_for_failures():
    page = report("passed", "failed")._repr_html_()
    assert "A &lt;title&gt;" in page and "seen &amp; expected" in page
    assert page.count("do &lt;this&gt;") == 1


def test_text_has_no_timings_so_notebook_output_is_stable():
    text = report("failed").to_text()
    assert "0.5" not in text and "hint: do <this>" in text and text.endswith("03_config: 1 failed")
