"""A rolling restart under continuous load, the legacy app against solutions/09_disposability (factor IX's figure):
requests that failed while two web processes were restarted one after the other.

    python bench/rolling_restart.py [--seconds 30] [--clients 4] [--delay 0.1] [--first-restart 5]
                                    [--serve-within 20] [--json]

Each app runs as two web processes behind a small load balancer of this script's own, which sends each request
to the next process in service and, like nginx, tries the other process when a connection is refused (the request
never reached a server), never when one was accepted and then dropped. `--clients` visitors make links without
pause for `--seconds`; every link's page answers after `--delay` seconds, and neither app gets a Redis, so each
request holds its process while the page answers (the preview is fetched in the request). `--first-restart`
seconds in, the first process is restarted as a platform restarts it: taken out of service, SIGTERM, up to 10 s
to exit (then SIGKILL), a new process started in its place and put back in service once it serves; then (or
after `--serve-within` seconds without it) the second. A failed request is one that got no 201: dropped, timed out after 10 s, with no process
in service to take it, or answered with an error.

The legacy app is served the way it serves itself (Flask's development server, after its import has fetched
every stored link's page); solution 09 runs its Procfile's `web` line (gunicorn), both processes sharing one
database.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests
from urllib3.exceptions import NewConnectionError

from factorlab import catalogue as cat
from factorlab.checks.app import REQUIRED_APP_ENV, SETUP
from factorlab.process import wait_until
from factorlab.runners import AppFailed
from factorlab.runners.local import LocalRunner
from factorlab.testpage import TestPage

EXIT_WITHIN = 10.0  # seconds a stopped process may take to exit before it is killed
ANSWER_WITHIN = 10.0  # seconds a request may take


class Balancer:
    """Round-robin over the processes in service (a process taken out of service gets no new request); a refused
    connection (or one not made within a second) is tried on the next process, as nginx's proxy_next_upstream
    does for requests that never reached a server."""

    def __init__(self, ports: list[int]):
        self.ports: list[int | None] = list(ports)
        self.lock = threading.Lock()
        self.turn = 0

    def set(self, i: int, port: int | None) -> None:
        """Put process i in service on port, or take it out (None)."""
        with self.lock:
            self.ports[i] = port

    def post(self, path: str, body: dict) -> str:
        """"ok", or why the request failed."""
        for _ in range(len(self.ports)):
            with self.lock:
                port = self.ports[self.turn % len(self.ports)]
                self.turn += 1
            if port is None:
                continue
            try:
                answer = requests.post(f"http://127.0.0.1:{port}{path}", json=body, timeout=(1.0, ANSWER_WITHIN))
            except requests.ConnectTimeout:
                continue
            except requests.ConnectionError as exc:
                reason = getattr(exc.args[0], "reason", None) if exc.args else None
                if isinstance(reason, NewConnectionError):
                    continue  # refused: nothing reached a server, so the next one may have it
                return "dropped"
            except requests.Timeout:
                return "timed out"
            return "ok" if answer.status_code == 201 else f"answered {answer.status_code}"
        return "no process in service took it"


class Load:
    """clients visitors making links through the balancer until stop(), each result kept with its time."""

    def __init__(self, balancer: Balancer, page: TestPage, label: str, clients: int):
        self.balancer, self.page, self.label = balancer, page, label
        self.results: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.started = time.monotonic()
        self.threads = [threading.Thread(target=self._visitor, args=(n,), daemon=True) for n in range(clients)]
        for thread in self.threads:
            thread.start()

    def _visitor(self, n: int) -> None:
        count = 0
        while not self.stopping.is_set():
            count += 1
            outcome = self.balancer.post("/api/links", {"url": self.page.url(f"/{self.label}/{n}/{count}")})
            with self.lock:
                self.results.append((time.monotonic() - self.started, outcome))

    def stop(self) -> list[tuple[float, str]]:
        self.stopping.set()
        for thread in self.threads:
            thread.join(ANSWER_WITHIN * 3)
        return self.results


def serving(port: int, within: float) -> float | None:
    """Seconds until GET / answers 200 on port (None after within seconds)."""
    started = time.monotonic()

    def up() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    return time.monotonic() - started if wait_until(up, within, every=0.05) else None


def rolling(label: str, page: TestPage, args, start) -> dict:
    """Start two processes with start(i), load them, restart each in turn; the figures."""
    seconds, clients, serve_within = args.seconds, args.clients, args.serve_within
    apps = [start(0), start(1)]
    for app in apps:
        serving(app.port, serve_within)
    balancer = Balancer([app.port for app in apps])
    load = Load(balancer, page, label, clients)
    time.sleep(args.first_restart)  # the load runs undisturbed for a while: the figures compare with it
    restarts = []
    for i in range(2):
        began = time.monotonic() - load.started
        old = apps[i]
        balancer.set(i, None)  # out of service first, as a platform's router is told before the process is stopped
        old.terminate()
        code = old.exited(EXIT_WITHIN)
        if code is None:
            old.kill()
        old.stop()
        restarted = time.monotonic()
        try:
            apps[i] = start(i)
            back = serving(apps[i].port, serve_within - (time.monotonic() - restarted))
        except AppFailed:
            back = None
        if back is not None:
            back = time.monotonic() - restarted  # from the new process's start, its import included
        if back is not None:  # back in service once it serves (its health check); else the other goes on alone
            balancer.set(i, apps[i].port)
        restarts.append({"at": began, "exit_code": code, "killed": code is None, "serving_after": back})
        if back is None:
            apps[i].stop()  # still not serving: it stays out of service
    left = seconds - (time.monotonic() - load.started)
    if left > 0:
        time.sleep(left)
    results = load.stop()
    for app in apps:
        app.stop()
    outcomes = Counter(outcome for _, outcome in results)
    return {"requests": len(results), "failed": len(results) - outcomes["ok"],
            "why": {k: v for k, v in outcomes.items() if k != "ok"},
            "seconds": results[-1][0] if results else 0.0, "restarts": restarts,
            "timeline": [[round(t, 2), outcome == "ok"] for t, outcome in results]}


def legacy(root: Path, page: TestPage, args) -> dict:
    """Each legacy process keeps its database next to its code: each has its folder, kept across its restarts."""
    with LocalRunner(root / "legacy") as runner:
        folders = [runner.workspace(), runner.workspace()]
        return rolling("legacy", page, args,
                       lambda i: runner.start({}, workspace=folders[i], ready_timeout=args.serve_within))


def solution(root: Path, page: TestPage, args) -> dict:
    with LocalRunner(root / "solutions" / "09_disposability") as runner, \
            tempfile.TemporaryDirectory(prefix="factorlab-bench-") as data:
        env = {**REQUIRED_APP_ENV, "DATABASE_URL": f"sqlite:///{data}/bench.db"}
        runner.run_command(SETUP, env)
        folders = [runner.workspace(), runner.workspace()]
        return rolling("solution", page, args,
                       lambda i: runner.start(env, workspace=folders[i], process_type="web",
                                              ready_timeout=args.serve_within))


def describe(name: str, r: dict, serve_within: float) -> str:
    why = ", ".join(f"{n} {k}" for k, v in sorted(r["why"].items()) for n in [v]) or "none"
    steps = "; ".join(f"process {i + 1} at {s['at']:.1f} s: exit code {s['exit_code']}"
                      + (" (killed)" if s["killed"] else "")
                      + (f", serving again {s['serving_after']:.1f} s later" if s["serving_after"] is not None
                         else f", not serving again within {serve_within:g} s")
                      for i, s in enumerate(r["restarts"]))
    return f"{name:14}{r['requests']:>9}{r['failed']:>8}   failures: {why}\n{'':14}{steps}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of load (default 30)")
    parser.add_argument("--clients", type=int, default=4, help="visitors at once (default 4)")
    parser.add_argument("--delay", type=float, default=0.1, help="seconds each link's page takes (default 0.1)")
    parser.add_argument("--first-restart", type=float, default=5.0, help="seconds of load before it (default 5)")
    parser.add_argument("--serve-within", type=float, default=20.0,
                        help="seconds a restarted process has to serve before the next restart (default 20)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    root = cat.find_root()
    with TestPage("a page", delay=args.delay) as page:
        figures = {"seconds": args.seconds, "clients": args.clients, "delay": args.delay,
                   "legacy": legacy(root, page, args), "solution": solution(root, page, args)}
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"rolling restart: two web processes restarted in turn while {args.clients} visitors make links "
              f"for {args.seconds:g} s (each link's page answering after {args.delay:g} s)")
        print(f"{'':14}{'requests':>9}{'failed':>8}")
        print(describe("legacy", figures["legacy"], args.serve_within))
        print(describe("solution 09", figures["solution"], args.serve_within))
        print("target: no failed request for solution 09")
    return 0 if figures["solution"]["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
