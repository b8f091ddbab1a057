"""Root pytest configuration.

- Every process factorlab starts in a test run (tests and notebook kernels alike) is marked,
  and the run fails if any of them, or any container or app image it made, is still there at the end.
- Tests marked `docker` need a reachable Docker engine. Without one they are left out and the
  run says how many; with FACTORLAB_REQUIRE_DOCKER=1 (CI) a missing engine is an error instead.
"""

import os

import pytest

from factorlab.process import marked

RUN_PREFIX = f"test{os.getpid()}-"
os.environ["FACTORLAB_RUN_PREFIX"] = RUN_PREFIX
LEFT_OUT = "no Docker engine: container test left out (start Docker to run it; see the README)"


def _engine() -> bool:
    from factorlab.docker import engine_available

    return engine_available()


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected what they will
def pytest_collection_modifyitems(config, items):
    wanted = [item for item in items if item.get_closest_marker("docker")]
    config.stash[_left_out] = 0
    if not wanted or _engine():
        return
    if os.environ.get("FACTORLAB_REQUIRE_DOCKER"):
        raise pytest.UsageError(f"FACTORLAB_REQUIRE_DOCKER is set, but no Docker engine answers "
                                f"(DOCKER_HOST={os.environ.get('DOCKER_HOST', '')!r})")
    for item in wanted:
        item.add_marker(pytest.mark.skip(reason=LEFT_OUT))
    config.stash[_left_out] = len(wanted)


_left_out = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter, config):
    left_out = config.stash.get(_left_out, 0)
    if left_out:
        terminalreporter.write_line(f"factorlab: {left_out} container test(s) left out: no Docker engine answers "
                                    "(DOCKER_HOST). Start Docker, or see the README, to run them.")


def pytest_sessionfinish(session, exitstatus):
    left = marked(RUN_PREFIX)
    if left:
        print(f"\nfactorlab: {len(left)} process(es) started during the tests are still running: {left}")
        session.exitstatus = 1
    if _engine():
        from factorlab.docker import leftovers

        things = leftovers(RUN_PREFIX)
        if things:
            print(f"\nfactorlab: the tests left {len(things)} container(s) or image(s) behind: {things}")
            session.exitstatus = 1
