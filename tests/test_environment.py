"""The course environment is declared once, twice: requirements.txt (pip, `make venv`)
and environment.yml (conda, Binder). Both must pin the same packages to the same
versions, on Python 3.11 (dev/prod parity, practised on the course itself)."""

from __future__ import annotations

import os
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements.txt"
ENVIRONMENT = ROOT / "environment.yml"
PYPROJECT = ROOT / "pyproject.toml"

EDITABLE_SELF = "-e ."
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<extras>\[[^\]]*\])?\s*==\s*(?P<version>[^\s;=<>!~,*]+)$")


def normalize(name: str) -> str:
    """PEP 503 name normalization: Flask, flask and FLASK are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def strip_comment(line: str) -> str:
    if line.lstrip().startswith("#"):
        return ""
    return re.split(r"\s#", line, maxsplit=1)[0].rstrip()


def parse_pins(lines: list[str], where: str) -> dict[str, str]:
    """{normalized name: version} from `name==version` lines; anything else fails the test."""
    pins: dict[str, str] = {}
    problems = []
    for line in lines:
        m = PIN.match(line.strip())
        if not m:
            problems.append(f"{where}: {line.strip()!r} is not pinned with == (expected NAME==VERSION)")
            continue
        name = normalize(m["name"])
        if name in pins:
            problems.append(f"{where}: {m['name']} is listed twice")
        pins[name] = m["version"]
    assert not problems, "\n".join(problems)
    return pins


def requirement_lines() -> list[str]:
    lines = [strip_comment(line) for line in REQUIREMENTS.read_text().splitlines()]
    return [line.strip() for line in lines if line.strip()]


def parse_environment(text: str) -> dict:
    """A tiny parser for the shape environment.yml has: top-level `key: value`
    scalars and `key:` lists, where one list item may be `- pip:` with a nested list.
    (PyYAML is not a course dependency; when it is importable a test checks that
    this parser reads the file the same way.)"""
    env: dict = {}
    key = None
    pip_list: list | None = None
    pip_indent = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = strip_comment(raw)
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        body = line.strip()
        if indent == 0:
            key, colon, value = body.partition(":")
            if not colon:
                raise ValueError(f"environment.yml line {number} not understood: {raw!r}")
            key = key.strip()
            env[key] = value.strip().strip("'\"") if value.strip() else []
            pip_list = None
        elif body.startswith("- ") and key is not None and isinstance(env[key], list):
            item = body[2:].strip().strip("'\"")
            if pip_list is not None and indent > pip_indent:
                pip_list.append(item)
                continue
            pip_list = None
            if item == "pip:":
                pip_list, pip_indent = [], indent
                env[key].append({"pip": pip_list})
            else:
                env[key].append(item)
        else:
            raise ValueError(f"environment.yml line {number} not understood: {raw!r}")
    return env


@pytest.fixture(scope="module")
def environment() -> dict:
    return parse_environment(ENVIRONMENT.read_text())


def conda_specs(environment: dict) -> list[str]:
    return [d for d in environment.get("dependencies", []) if isinstance(d, str)]


def pip_section(environment: dict) -> list[str]:
    sections = [d["pip"] for d in environment.get("dependencies", []) if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1, f"environment.yml must have exactly one pip: section, found {len(sections)}"
    return sections[0]


def test_environment_name_and_channels(environment):
    assert environment.get("name") == "factorlab", "environment.yml: name should be factorlab"
    assert environment.get("channels") == ["conda-forge"], "environment.yml: channels should be [conda-forge]"


def test_python_is_pinned_to_3_11(environment):
    pythons = [s for s in conda_specs(environment) if re.match(r"^python\b(?!-)", s)]
    assert pythons, "environment.yml: no python in dependencies; expected python=3.11"
    assert len(pythons) == 1, f"environment.yml: python listed more than once: {pythons}"
    assert re.fullmatch(r"python\s*==?\s*3\.11(\.\*)?", pythons[0]), (
        f"environment.yml: python is {pythons[0]!r}; expected python=3.11"
    )
    assert "pip" in conda_specs(environment), "environment.yml: pip must be a conda dependency for the pip: section"


def test_every_requirement_is_pinned():
    lines = requirement_lines()
    assert lines, "requirements.txt is empty"
    assert EDITABLE_SELF not in lines, "requirements.txt: drop '-e .'; `make venv` installs factorlab itself"
    parse_pins(lines, "requirements.txt")


def test_every_pip_entry_in_environment_is_pinned(environment):
    entries = pip_section(environment)
    # repo2docker installs environment.yml before it copies the repository in, so '-e .' cannot work there:
    # postBuild installs factorlab once the files are in place.
    assert EDITABLE_SELF not in entries, "environment.yml: install factorlab in postBuild, not with '-e .'"
    parse_pins([e for e in entries if e != EDITABLE_SELF], "environment.yml pip:")


def test_requirements_and_environment_pin_the_same_versions(environment):
    req = parse_pins(requirement_lines(), "requirements.txt")
    env = parse_pins([e for e in pip_section(environment) if e != EDITABLE_SELF], "environment.yml pip:")
    problems = []
    for name in sorted(req.keys() | env.keys()):
        if name not in env:
            problems.append(f"{name}: pinned {req[name]} in requirements.txt, missing from environment.yml pip:")
        elif name not in req:
            problems.append(f"{name}: pinned {env[name]} in environment.yml pip:, missing from requirements.txt")
        elif req[name] != env[name]:
            problems.append(f"{name}: requirements.txt pins {req[name]}, environment.yml pins {env[name]}")
    assert not problems, "the two environments disagree:\n" + "\n".join(problems)


def test_requires_python_admits_3_11():
    spec = tomllib.loads(PYPROJECT.read_text())["project"]["requires-python"]
    try:
        from packaging.specifiers import SpecifierSet
    except ImportError:  # pragma: no cover - packaging comes with pip's tool chain
        pytest.skip("packaging is not importable")
    for version in ("3.11.0", "3.11.7"):
        assert version in SpecifierSet(spec), f"pyproject.toml: requires-python {spec!r} excludes Python {version}"


def test_pins_satisfy_the_package_dependencies():
    """factorlab's own dependencies (pyproject) are in the lock, at versions they accept."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pragma: no cover
        pytest.skip("packaging is not importable")
    pins = parse_pins(requirement_lines(), "requirements.txt")
    problems = []
    for dep in tomllib.loads(PYPROJECT.read_text())["project"].get("dependencies", []):
        req = Requirement(dep)
        name = normalize(req.name)
        if name not in pins:
            problems.append(f"{req.name}: a dependency in pyproject.toml, not pinned in requirements.txt")
        elif not req.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{req.name}: pyproject.toml wants {req.specifier}, requirements.txt pins {pins[name]}")
    assert not problems, "\n".join(problems)


def test_running_on_python_3_11():
    assert sys.version_info[:2] == (3, 11), f"the course runs on Python 3.11, this is {sys.version.split()[0]}"


def test_the_tiny_parser_reads_environment_yml_as_yaml_does(environment):
    yaml = pytest.importorskip("yaml")
    assert environment == yaml.safe_load(ENVIRONMENT.read_text())


def test_parse_pins_names_the_offender():
    with pytest.raises(AssertionError, match=r"'flask>=3' is not pinned with =="):
        parse_pins(["requests==2.34.2", "flask>=3"], "requirements.txt")
    with pytest.raises(AssertionError, match="Flask is listed twice"):
        parse_pins(["flask==3.1.3", "Flask==3.1.3"], "requirements.txt")


def test_binder_installs_factorlab_after_the_build():
    post_build = ROOT / "postBuild"
    assert os.access(post_build, os.X_OK), "postBuild must be executable for repo2docker to run it"
    assert "pip install" in post_build.read_text() and "-e ." in post_build.read_text()
