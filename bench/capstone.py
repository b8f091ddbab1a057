"""The capstone's figures (notebook 13's run, without the notebook): an app folder run as web×2 and worker×2
of a release, behind a router, while visitors make and follow links; a web and a worker killed (SIGKILL), a
release rolled forward and back (rolling restarts), a one-off purge. It prints the requests answered and failed
(target 0), the jobs lost (target 0) and the seconds each disruption took to heal.

    python bench/capstone.py [--path DIR] [--visitors 3] [--settle 3] [--json]

Default folder: solutions/12_admin_processes. Exit code 0 when both targets are met.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from factorlab import catalogue as cat
from factorlab import services
from factorlab.capstone import Drill
from factorlab.testpage import TestPage


def run(folder: Path, visitors: int, settle: float) -> dict:
    pg, redis = services.Postgres.start(), services.Redis.start()
    try:
        with TestPage("A page worth a preview", delay=0.05) as page:
            drill = Drill(folder, pg, redis, page, visitors=visitors, settle=settle)
            try:
                drill.set_up()
                drill.start()
                drill.kill_web("web.1")
                drill.kill_worker()
                drill.roll(forward=True, SHORTLY_SESSION_LIFETIME="86400")
                drill.roll(forward=False)
                drill.purge()
                figures = drill.finish()
            except BaseException:
                drill.abort()
                raise
    finally:
        pg.stop()
        redis.stop()
    for key in ("events", "loose_lines", "timeline", "release_timeline", "supervisor"):
        figures.pop(key)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", help="the app folder (default: solutions/12_admin_processes)")
    parser.add_argument("--visitors", type=int, default=3, help="visitors at once (default 3)")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of load before each step (default 3)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    course = cat.load()
    folder = Path(args.path).resolve() if args.path else course.get("12").solution
    figures = run(folder, args.visitors, args.settle)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"capstone drill of {folder.name}: {args.visitors} visitors, {figures['seconds']} s of load")
        print(f"requests: {figures['requests']}, answered {figures['served']}, failed {figures['failed']} "
              f"(target 0); sent again by the router: {figures['sent_again'] or 'none'}")
        print(f"links: {figures['links']}, purged once expired {figures['links_purged']}; "
              f"jobs lost: {figures['jobs_lost']} (target 0)")
        for r in figures["recoveries"]:
            healed = f"{r['recovered_after']:.2f} s" if r["recovered_after"] is not None else "not healed"
            print(f"  at {r['at']:5.1f} s  {r['what']:<34} whole again after {healed}")
        print(f"answers by release: {figures['releases_seen']}; one-offs: {figures['one_offs']}")
    return 0 if figures["failed"] == 0 and figures["jobs_lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
