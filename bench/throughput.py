"""Throughput of link creation, the legacy app against solutions/08_concurrency, with a preview target that takes
1 s to answer (factor VIII's figure): links created per second and the 95th percentile of the answer time.

    python bench/throughput.py [--links 48] [--clients 8] [--delay 1] [--json]

Both apps get the same load in one run, on this machine: `--clients` visitors at once, each making links until
`--links` are made, every link to its own page of a local test page that answers after `--delay` seconds. The
legacy app is served the way it serves itself (Flask's development server, threaded), fetching each preview in
the request; solution 08 runs as its Procfile says, one `web` process (gunicorn) and two `worker` processes
sharing a private Redis and one database, and only queues the previews. The solution's titles arrive later, from
the workers: the script waits for all of them and says how long that took, so nothing is hidden.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from factorlab import catalogue as cat
from factorlab import services
from factorlab.checks.app import REQUIRED_APP_ENV, SETUP
from factorlab.checks.attached import workers_waiting
from factorlab.process import wait_until
from factorlab.runners.local import LocalRunner
from factorlab.testpage import TestPage

TARGET_RATIO = 3.0


def p95(values: list[float]) -> float:
    """The 95th percentile (nearest rank) of values."""
    ordered = sorted(values)
    return ordered[max(0, -(-95 * len(ordered) // 100) - 1)]


def load(url: str, page: TestPage, label: str, links: int, clients: int) -> dict:
    """Make `links` links on the app at url with `clients` visitors at once: the rate, p95 and failures."""
    def make(n: int) -> tuple[float, str | None]:
        started = time.monotonic()
        try:
            answer = requests.post(f"{url}/api/links", json={"url": page.url(f"/{label}/{n}")}, timeout=60)
            code = answer.json().get("code") if answer.status_code == 201 else None
        except (requests.RequestException, ValueError):
            code = None
        return time.monotonic() - started, code

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(make, range(links)))
    elapsed = time.monotonic() - started
    made = [code for _, code in results if code]
    return {"links": links, "made": len(made), "failed": links - len(made), "seconds": elapsed,
            "per_second": len(made) / elapsed, "p95": p95([t for t, _ in results]),
            "median": statistics.median(t for t, _ in results), "codes": made}


def titled(url: str, codes: list[str], title: str, timeout: float) -> float | None:
    """Seconds until every link shows the page's title (None if some never do within timeout)."""
    started = time.monotonic()
    left = set(codes)

    def done() -> bool:
        for code in list(left):
            shown = requests.get(f"{url}/api/links/{code}", timeout=10).json()
            if shown.get("title") == title:
                left.discard(code)
        return not left

    return time.monotonic() - started if wait_until(done, timeout, every=0.2) else None


def legacy(root: Path, page: TestPage, links: int, clients: int) -> dict:
    with LocalRunner(root / "legacy") as runner:
        app = runner.start({})
        app.get("/")
        return load(app.url, page, "legacy", links, clients)


def solution(root: Path, page: TestPage, links: int, clients: int, workers: int = 2) -> dict:
    redis = services.Redis.start()
    try:
        with LocalRunner(root / "solutions" / "08_concurrency") as runner, \
                tempfile.TemporaryDirectory(prefix="factorlab-bench-") as data:
            env = {**REQUIRED_APP_ENV, "DATABASE_URL": f"sqlite:///{data}/bench.db", "REDIS_URL": redis.url()}
            runner.run_command(SETUP, env)
            web = runner.start(env, process_type="web")
            started = [runner.start(env, process_type="worker", listens=False) for _ in range(workers)]
            web.get("/")
            workers_waiting(redis, started)
            result = load(web.url, page, "solution", links, clients)
            result["titles_after"] = titled(web.url, result["codes"], page.title, timeout=60 + links * page.delay)
            result["workers"] = workers
            return result
    finally:
        redis.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=48, help="links to make on each app (default 48)")
    parser.add_argument("--clients", type=int, default=8, help="visitors at once (default 8)")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds the preview target takes (default 1)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    root = cat.find_root()
    with TestPage("a slow page", delay=args.delay) as page:
        old = legacy(root, page, args.links, args.clients)
        new = solution(root, page, args.links, args.clients)
    ratio = new["per_second"] / old["per_second"] if old["per_second"] else float("inf")
    figures = {"links": args.links, "clients": args.clients, "delay": args.delay, "ratio": ratio,
               "legacy": {k: v for k, v in old.items() if k != "codes"},
               "solution": {k: v for k, v in new.items() if k != "codes"}}
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"throughput: {args.links} links made by {args.clients} visitors at once, "
          f"each link's page answering after {args.delay:g} s")
    print(f"{'':16}{'links/s':>9}{'p95':>9}{'median':>9}{'failed':>8}")
    for name, r in (("legacy", old), ("solution 08", new)):
        print(f"{name:16}{r['per_second']:>9.1f}{r['p95']:>8.3f}s{r['median']:>8.3f}s{r['failed']:>8}")
    after = new["titles_after"]
    print(f"solution 08: its {new['workers']} workers stored every title "
          + (f"{after:.1f} s after the last link was made" if after is not None else "NOT within the time allowed"))
    print(f"ratio: {ratio:.1f}x the legacy app's links per second (target >= {TARGET_RATIO:g}x)")
    return 0 if ratio >= TARGET_RATIO and not new["failed"] and after is not None else 1


if __name__ == "__main__":
    sys.exit(main())
