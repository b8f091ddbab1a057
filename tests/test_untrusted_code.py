"""Learner code is untrusted: broken, hanging or noisy apps get a clear failed result in bounded time."""

import time

import pytest

from conftest import our_children, run_cli

LIMIT = 30
BROKEN = {
    "syntax_error": ("def create_app(:\n    pass\n", "SyntaxError"),
    "never_binds": ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                    "while True:\n    time.sleep(1)\n", "the app did not start serving within"),
    "hangs_at_import": ("while True:\n    pass\n", "the app did not start serving within"),
    "exits_at_once": ("raise SystemExit(0)\n", "exited with code 0"),
    "floods_stdout": ("import sys\nwhile True:\n    sys.stdout.write('noise ' * 200 + '\\n')\n",
                      "the app did not start serving within"),
    "forks_and_exits": ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(600)\n"
                        "raise SystemExit(0)\n", "exited with code 0"),
    "allocates_without_bound": ("hoard = []\nwhile True:\n    hoard.append(bytearray(50_000_000))\n",
                                "MemoryError"),
    "fork_bomb_lite": ("import os, time\nfor _ in range(20):\n    if os.fork() == 0:\n        os.setsid()\n"
                       "        time.sleep(600)\nwhile True:\n    time.sleep(1)\n", "the app did not start serving within"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", BROKEN)
def test_a_broken_app_fails_clearly_in_bounded_time(name, tmp_path, no_leftovers):
    source, cause = BROKEN[name]
    (tmp_path / "shortly.py").write_text(source)
    started = time.monotonic()
    done = run_cli("check", "03", "--path", str(tmp_path), timeout=LIMIT + 30)
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stdout + done.stderr
    assert elapsed < LIMIT, f"took {elapsed:.1f} s"
    assert cause in done.stdout
    assert "Traceback" not in done.stderr and not done.stderr.strip()
    assert len(done.stdout) < 20_000
    time.sleep(0.2)
    assert not our_children()
