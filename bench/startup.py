"""Start-to-serving time with many links stored, the legacy app against solutions/09_disposability (factor IX's
figure): seconds from starting a process to its first answer, with no links and with `--links` of them.

    python bench/startup.py [--links 10000] [--delay 0] [--give-up 300] [--json]

Each app starts from a database that already holds the links, each to its own path of a local test page that
answers at once (or after `--delay` seconds). The legacy app is started the way it serves itself (Flask's development server, after its
import has warmed its cache by fetching every link's page); solution 09 runs its Procfile's `web` line
(gunicorn) with a private Redis attached, as in production. The clock starts when the process is started and
stops at the first 200 to GET /. An app still not serving after `--give-up` seconds is reported as such.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import requests

from factorlab import catalogue as cat
from factorlab import services
from factorlab.checks.app import REQUIRED_APP_ENV, SETUP
from factorlab.checks.disposability import store_links
from factorlab.process import wait_until
from factorlab.runners import AppFailed
from factorlab.runners.local import LocalRunner
from factorlab.testpage import TestPage

TARGET = 1.0  # seconds: solution 09 serves within this, whatever the number of links


def first_answer(url: str, started: float, give_up: float) -> float | None:
    """Seconds from started until GET / answers 200 (None after give_up seconds)."""
    def serving() -> bool:
        try:
            return requests.get(f"{url}/", timeout=max(0.1, give_up - (time.monotonic() - started))).status_code == 200
        except requests.RequestException:
            return False

    return time.monotonic() - started if wait_until(serving, give_up - (time.monotonic() - started), every=0.02) \
        else None


def legacy(root: Path, urls: list[str], give_up: float) -> float | None:
    """The legacy app keeps its database next to its code: the links go into the copy the runner starts."""
    with LocalRunner(root / "legacy") as runner:
        workspace = runner.workspace()
        if urls:
            store_links(str(workspace / "shortly.db"), urls, create=True)
        started = time.monotonic()
        try:
            app = runner.start({}, workspace=workspace, ready_timeout=give_up)
        except AppFailed:
            return None
        return first_answer(app.url, started, give_up)


def solution(root: Path, urls: list[str], give_up: float) -> float | None:
    redis = services.Redis.start()
    try:
        with LocalRunner(root / "solutions" / "09_disposability") as runner, \
                tempfile.TemporaryDirectory(prefix="factorlab-bench-") as data:
            env = {**REQUIRED_APP_ENV, "DATABASE_URL": f"sqlite:///{data}/bench.db", "REDIS_URL": redis.url()}
            runner.run_command(SETUP, env)
            store_links(f"{data}/bench.db", urls)
            workspace = runner.workspace()  # copied before the clock starts, as a deploy's release already is
            started = time.monotonic()
            try:
                app = runner.start(env, workspace=workspace, process_type="web", ready_timeout=give_up)
            except AppFailed:
                return None
            return first_answer(app.url, started, give_up)
    finally:
        redis.stop()


def seconds(value: float | None, give_up: float) -> str:
    return f"{value:.2f} s" if value is not None else f"> {give_up:g} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=10_000, help="links in the database (default 10000)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds each stored page takes (default 0)")
    parser.add_argument("--give-up", type=float, default=300.0, help="seconds to wait for an app (default 300)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    root = cat.find_root()
    with TestPage("a stored page", delay=args.delay) as page:
        many = [page.url(f"/stored/{n}") for n in range(args.links)]
        figures = {"links": args.links, "target": TARGET, "give_up": args.give_up,
                   "legacy": {"none": legacy(root, [], args.give_up), "many": legacy(root, many, args.give_up)},
                   "solution": {"none": solution(root, [], args.give_up),
                                "many": solution(root, many, args.give_up)}}
        figures["legacy"]["fetched"] = sum(1 for p in page.paths() if p.startswith("/stored/"))
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"start to serving: the first 200 to GET / after the process starts, with 0 and {args.links} links stored")
        print(f"{'':16}{'0 links':>12}{f'{args.links} links':>14}")
        for name, key in (("legacy", "legacy"), ("solution 09", "solution")):
            row = figures[key]
            print(f"{name:16}{seconds(row['none'], args.give_up):>12}{seconds(row['many'], args.give_up):>14}")
        print(f"the legacy app fetched {figures['legacy']['fetched']} stored pages before it served")
        print(f"target: solution 09 serves within {TARGET:g} s with {args.links} links")
    many_time = figures["solution"]["many"]
    return 0 if many_time is not None and many_time < TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
