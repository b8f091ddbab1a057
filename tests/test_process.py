"""Processes started for checks: bounded output, and nothing survives a stop."""

import os
import sys
import time

from factorlab.process import BoundedOutput, Process, free_port, port_open, wait_for_port

from conftest import our_children


def test_bounded_output_keeps_head_and_tail():
    out = BoundedOutput(limit=20)
    for chunk in (b"0123456789", b"abcdefghij", b"KLMNOPQRST", b"uvwxyz"):
        out.feed(chunk)
    text = out.text()
    assert text.startswith("0123456789") and text.endswith("QRSTuvwxyz") and "16 bytes of output left out" in text


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path, no_leftovers):
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    proc = Process.start([sys.executable, "-c", code], cwd=str(tmp_path), env=dict(os.environ))
    time.sleep(0.3)
    started = time.monotonic()
    proc.stop(grace=0.5)
    assert time.monotonic() - started < 5
    assert proc.poll() is not None and "up" in proc.output.text()


def test_stop_kills_a_child_that_left_the_process_group(tmp_path, no_leftovers):
    code = ("import os, time\n"
            "if os.fork() == 0:\n    os.setsid(); time.sleep(60)\n"
            "time.sleep(60)\n")
    proc = Process.start([sys.executable, "-c", code], cwd=str(tmp_path), env=dict(os.environ))
    time.sleep(0.5)
    assert len(set(our_children())) >= 2
    proc.stop(grace=0.5)
    time.sleep(0.2)


def test_wait_for_port_gives_up_when_the_process_exits(tmp_path):
    proc = Process.start([sys.executable, "-c", "raise SystemExit(3)"], cwd=str(tmp_path), env=dict(os.environ))
    started = time.monotonic()
    assert not wait_for_port(proc, free_port(), timeout=10)
    assert time.monotonic() - started < 5
    assert proc.wait(5) == 3
    proc.stop()


def test_free_port_is_free():
    assert not port_open(free_port())


def test_a_process_started_from_a_thread_outlives_the_thread(tmp_path, no_leftovers):
    """Linux's parent-death signal follows the thread that forked a child: a check that starts two apps side by
    side, each from a thread that then returns, must not lose them (even one that execs, keeping the signal)."""
    import threading

    from factorlab.process import Process, wait_until

    started = []
    thread = threading.Thread(target=lambda: started.append(
        Process.start(["/bin/sh", "-c", "exec sleep 60"], cwd=str(tmp_path), env={"PATH": "/usr/bin:/bin"})))
    thread.start()
    thread.join()
    [proc] = started
    try:
        assert not wait_until(lambda: proc.poll() is not None, 1.5), f"killed with its thread: {proc.poll()}"
    finally:
        proc.stop()
