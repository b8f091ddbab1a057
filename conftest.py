"""Root pytest configuration: every process factorlab starts in a test run (tests and notebook
kernels alike) is marked, and the run fails if any of them is still alive at the end."""

import os

from factorlab.process import marked

RUN_PREFIX = f"test{os.getpid()}-"
os.environ["FACTORLAB_RUN_PREFIX"] = RUN_PREFIX


def pytest_sessionfinish(session, exitstatus):
    left = marked(RUN_PREFIX)
    if left:
        print(f"\nfactorlab: {len(left)} process(es) started during the tests are still running: {left}")
        session.exitstatus = 1
