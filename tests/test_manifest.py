"""requirements.txt read as pip reads it: the forms pip freeze, pip-compile and people write."""

import pytest

from factorlab import manifest


def read(tmp_path, text: str, **others: str) -> manifest.Manifest:
    (tmp_path / "requirements.txt").write_text(text)
    for name, content in others.items():
        (tmp_path / name.replace("__", "/")).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name.replace("__", "/")).write_text(content)
    return manifest.read(tmp_path)


@pytest.mark.parametrize("line, pinned", [
    ("flask==3.1.3", True), ("Flask===3.1.3", True), ("requests[socks]==2.34.2 ; python_version >= '3.8'", True),
    ("flask", False), ("flask>=3", False), ("flask~=3.1.3", False), ("flask==3.*", False), ("flask<4,>=3", False),
    ("zz @ git+https://example.invalid/zz@0123456789012345678901234567890123456789", True),
    ("zz @ git+https://example.invalid/zz@main", False),
    ("ww @ https://example.invalid/ww-1.2.3-py3-none-any.whl", True),
    ("-e git+https://example.invalid/yy#egg=yy", False),
])
def test_what_counts_as_a_pin(tmp_path, line, pinned):
    declared = read(tmp_path, line + "\n")
    assert not declared.problems and [r.pinned for r in declared.requirements] == [pinned]


def test_the_forms_tools_write(tmp_path):
    declared = read(tmp_path, "# via pip-compile\n-i https://pypi.org/simple\n--extra-index-url=https://x.invalid\n"
                              "flask==3.1.3 \\\n    --hash=sha256:aaaa \\\n    --hash=sha256:bbbb\n    # via -r in\n"
                              "-r base.txt\n-c constraints.txt\nurllib3  # pinned by the constraint\n",
                    **{"base.txt": "redis==8.1.0\n", "constraints.txt": "urllib3==2.8.0\n"})
    assert not declared.problems
    assert declared.names == {"flask", "redis", "urllib3"} and not declared.unpinned()
    assert sorted(declared.files) == ["base.txt", "constraints.txt", "requirements.txt"]


def test_what_pip_would_refuse_is_a_problem(tmp_path):
    declared = read(tmp_path, "-r ../outside.txt\n-r missing.txt\nnot a requirement ===\n--bogus-option\n")
    assert len(declared.problems) == 4


def test_no_manifest(tmp_path):
    with pytest.raises(manifest.ManifestMissing):
        manifest.read(tmp_path)


@pytest.mark.parametrize("url, pinned", [
    ("https://github.com/psf/requests/archive/refs/heads/release-2.34.tar.gz", False),  # a branch moves
    ("https://github.com/psf/requests/archive/main.zip", False),
    ("https://github.com/psf/requests/archive/refs/tags/v2.34.2.tar.gz", False),  # so may a tag
    ("https://gitlab.com/x/requests/-/archive/main/requests-main.tar.gz", False),
    ("https://github.com/psf/requests/archive/0123456789abcdef0123456789abcdef01234567.tar.gz", True),
    ("https://github.com/psf/requests/archive/refs/heads/main.tar.gz#sha256=" + "ab" * 32, True),
    ("https://files.pythonhosted.org/packages/aa/bb/requests-2.34.2.tar.gz", True),
    ("https://files.pythonhosted.org/packages/aa/bb/requests-2.34.2-py3-none-any.whl", True),
    ("https://example.invalid/downloads/release-2.34.tar.gz", False),  # a number, but not this project's file
])
def test_what_counts_as_a_pinned_url(tmp_path, url, pinned):
    declared = read(tmp_path, f"requests @ {url}\n")
    assert not declared.problems and [r.pinned for r in declared.requirements] == [pinned]
