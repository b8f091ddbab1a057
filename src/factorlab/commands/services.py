"""`factorlab services up|down|status`: private PostgreSQL and Redis for working through factors IV and on."""

from __future__ import annotations

from .. import catalogue as cat
from .. import services
from . import UsageError


def run(args) -> int:
    root = cat.find_root()
    try:
        if args.action == "up":
            for name, url in services.up(root).items():
                print(f"export {name}={url}")
        elif args.action == "down":
            stopped = services.down(root)
            print(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")
        else:
            state = services.status(root)
            if not state:
                print("not running (start them with: factorlab services up)")
            urls = {"postgres": "DATABASE_URL", "redis": "REDIS_URL"}
            known = services.urls(root)
            for kind, alive in state.items():
                print(f"{kind}: {'running' if alive else 'NOT answering'}  {urls[kind]}={known.get(urls[kind], '?')}")
            return 0 if state and all(state.values()) else 1
    except (services.ServiceMissing, services.ServiceFailed) as exc:
        raise UsageError(str(exc)) from None
    return 0
