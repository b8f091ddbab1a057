"""Factor VI, processes: the app runs as stateless processes that share nothing but their backing services.

The checks run instances of the app side by side with one config (one PostgreSQL database, one private
Redis) and talk to them through one HTTP client, as a browser behind a load balancer would: a cookie goes
to a host, whatever its port, so every instance gets the same session cookie. They kill an instance
outright, and they let a short session expire. A static check backs them up: no module-level dict or list
of the app that its functions fill.
"""

from __future__ import annotations

import ast
import time
from pathlib import Path

from .. import services
from ..http import Client
from ..testpage import TestPage
from . import CheckContext, CheckFailed, check
from .app import REQUIRED_APP_ENV, clicks, clicks_text, create_link, follow, recent
from .source import app_module_file, parse

CLICKS = 4  # followed alternately on two instances
CLICKS_BEFORE_KILL = 3
LIFETIME = 2  # seconds: SHORTLY_SESSION_LIFETIME in the expiry check
LIFETIME_VAR = "SHORTLY_SESSION_LIFETIME"
# A module-level name bound to one of these holds a container a function may fill.
CONTAINER_CALLS = {"dict", "list", "set", "defaultdict", "OrderedDict", "Counter", "deque"}
CONTAINER_NODES = (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)
MUTATORS = {"append", "appendleft", "extend", "insert", "setdefault", "update", "add", "pop", "popitem",
            "remove", "discard", "clear"}
SHARED = "Expected: state that outlives a request kept where every process finds it: the database, the Redis " \
         "at REDIS_URL, or the signed session cookie; never in the memory of one process."


def _which(recent: list, made: list[str], places: list[str]) -> str:
    """What a recent list holds of the links made, in words without codes (messages stay stable)."""
    if recent == made[::-1]:
        return f"all {len(made)}, newest first"
    known = [code for code in recent if code in made]
    if not known:
        return "none of them" if not recent else "none of them, only other codes"
    if set(known) == set(made):
        return f"all {len(made)}, but not newest first"
    for place in sorted(set(places)):
        if set(known) == {code for code, where in zip(made, places) if where == place}:
            return f"only the {len(known)} made on {place}"
    return f"{len(set(known))} of the {len(made)}"


@check("processes.shared_state", factor=6, title="Two processes side by side share every state",
       hint="Nothing a later request needs may stay in one process: count each click with one UPDATE in the "
            "database, and keep the recent links in Redis (REDIS_URL) or in the signed session cookie.",
       timeout=60)
def shared_state(ctx: CheckContext) -> str:
    """Two instances with the same DATABASE_URL (PostgreSQL) and REDIS_URL, one client: links made alternately on
    A and B are all listed, newest first, by GET /api/recent on both; a link followed alternately on A and B
    reports every click on both."""
    postgres = services.shared_postgres(ctx.course_root)
    database = postgres.create_database("procs")
    redis = services.Redis.start()
    try:
        env = {**REQUIRED_APP_ENV, "DATABASE_URL": database, "REDIS_URL": redis.url()}
        apps = {"A": ctx.runner.start(env), "B": ctx.runner.start(env)}
        with TestPage() as page, Client() as browser:
            places = ["A", "B", "A", "B"]
            made = [create_link(apps[place], page.url(f"/shared/{i}"), client=browser, where=place)["code"]
                    for i, place in enumerate(places)]
            for place, app in apps.items():
                listed = recent(app, client=browser, where=place)
                if listed != made[::-1]:
                    raise CheckFailed(f"Seen: one client made {len(made)} links, alternately on instances A and B "
                                      f"(same DATABASE_URL and REDIS_URL); GET /api/recent on {place} listed "
                                      f"{_which(listed, made, places)}.\n{SHARED} Here: all {len(made)}, newest "
                                      "first, on either instance.")
            for i in range(CLICKS):
                place = "AB"[i % 2]
                follow(apps[place], made[0], client=browser, where=place)
            seen = {place: clicks(app, made[0], client=browser) for place, app in apps.items()}
            if any(count != CLICKS for count in seen.values()):
                raise CheckFailed(f"Seen: a link followed {CLICKS} times, alternately on A and B: A "
                                  f"{clicks_text(seen['A'])} clicks, B {clicks_text(seen['B'])}.\n"
                                  f"Expected: {CLICKS} on both: each click counted in the shared database as it "
                                  "happens (UPDATE … SET clicks = clicks + 1), not held back in one process.")
    finally:
        redis.stop()
        postgres.drop_database(database)
    return (f"two instances, one client: both list all {len(made)} recent links, newest first, and both count "
            f"all {CLICKS} clicks")


@check("processes.survives_kill", factor=6, title="A killed process loses nothing",
       hint="A process may die at any moment (kill -9, a crash, a scale-down) and run no clean-up code: write each "
            "click to the database at once, and keep the recent links in Redis or the session cookie.",
       timeout=60)
def survives_kill(ctx: CheckContext) -> str:
    """After links and clicks on one instance, it is killed with SIGKILL (no clean-up runs). A new instance with
    the same config shows the same client its recent links, and every click."""
    postgres = services.shared_postgres(ctx.course_root)
    database = postgres.create_database("procs")
    redis = services.Redis.start()
    try:
        env = {**REQUIRED_APP_ENV, "DATABASE_URL": database, "REDIS_URL": redis.url()}
        first = ctx.runner.start(env)
        with TestPage() as page, Client() as browser:
            made = [create_link(first, page.url(f"/kept/{i}"), client=browser, where="the first instance")["code"]
                    for i in range(2)]
            for _ in range(CLICKS_BEFORE_KILL):
                follow(first, made[0], client=browser, where="the first instance")
            first.kill()
            second = ctx.runner.start(env)
            listed = recent(second, client=browser, where="the new instance")
            if listed != made[::-1]:
                raise CheckFailed(f"Seen: a client made {len(made)} links on an instance that was then killed "
                                  f"(SIGKILL); GET /api/recent on a new instance with the same config listed "
                                  f"{_which(listed, made, ['the killed one'] * len(made))}.\n{SHARED} Here: both "
                                  "links, newest first.")
            count = clicks(second, made[0], client=browser)
            if count != CLICKS_BEFORE_KILL:
                raise CheckFailed(f"Seen: a link was followed {CLICKS_BEFORE_KILL} times on an instance that was then "
                                  f"killed (SIGKILL); a new instance with the same config {clicks_text(count)} "
                                  f"clicks.\nExpected: {CLICKS_BEFORE_KILL}: a process that dies owes nothing, so "
                                  "each click is in the database once the redirect has been sent.")
    finally:
        redis.stop()
        postgres.drop_database(database)
    return (f"after a kill -9, a new instance shows the client its {len(made)} recent links and all "
            f"{CLICKS_BEFORE_KILL} clicks")


def _wait_past_lifetime(last_answer: float) -> None:
    """Sleep until a session last renewed at last_answer is over LIFETIME old, in whole seconds: Flask (through
    itsdangerous) compares whole-second timestamps, so allow for a second it may round down."""
    until = int(last_answer) + LIFETIME + 1 + 0.1
    time.sleep(max(0.0, until - time.time()))


@check("processes.session_expiry", factor=6, title=f"Sessions expire after {LIFETIME_VAR}",
       hint="Make the session permanent with a lifetime from SHORTLY_SESSION_LIFETIME: "
            "app.permanent_session_lifetime = timedelta(seconds=…) and session.permanent = True. Flask then refuses "
            "an older cookie; give the Redis list of recent links the same expiry.",
       timeout=60)
def session_expiry(ctx: CheckContext) -> str:
    """With SHORTLY_SESSION_LIFETIME=2, with and without REDIS_URL: a new link is listed by GET /api/recent at
    once, and no longer a little over 2 s after the last visit, neither to the client nor when its old
    session cookie is sent again (the app itself refuses it)."""
    shared = ctx.runner.shared_dir()
    redis = services.Redis.start()
    try:
        base = {**REQUIRED_APP_ENV, LIFETIME_VAR: str(LIFETIME)}
        configs = {"with REDIS_URL": {**base, "DATABASE_URL": f"sqlite:///{shared / 'redis.db'}",
                                      "REDIS_URL": redis.url()},
                   "without REDIS_URL": {**base, "DATABASE_URL": f"sqlite:///{shared / 'cookie.db'}"}}
        apps = {label: ctx.runner.start(env) for label, env in configs.items()}
        browsers = {label: Client() for label in configs}
        try:
            with TestPage() as page:
                cookies, last_answer = {}, 0.0
                for label, app in apps.items():
                    browser = browsers[label]
                    where = f"the instance {label}"
                    code = create_link(app, page.url("/short-lived"), client=browser, where=where)["code"]
                    if code not in recent(app, client=browser, where=where):
                        raise CheckFailed(f"Seen: {label} and {LIFETIME_VAR}={LIFETIME}, GET /api/recent right "
                                          "after a new link did not list it.\nExpected: the new link, listed for the "
                                          f"{LIFETIME} s the session lasts.")
                    cookies[label] = {cookie.name: cookie.value for cookie in browser.cookies}
                    last_answer = time.time()
                _wait_past_lifetime(last_answer)
                for label, app in apps.items():
                    where = f"the instance {label}"
                    if recent(app, client=browsers[label], where=where):
                        raise CheckFailed(f"Seen: {label} and {LIFETIME_VAR}={LIFETIME}, GET /api/recent still "
                                          f"listed the link more than {LIFETIME} s after the client's last visit.\n"
                                          f"Expected: an empty list: the session ends {LIFETIME} s after the last "
                                          "visit. A session that never ends keeps its data for good, in the process "
                                          "or the store, and anyone holding its cookie keeps it too.")
                    with Client() as replay:
                        replay.cookies.update(cookies[label])
                        if recent(app, client=replay, where=where):
                            raise CheckFailed(f"Seen: {label} and {LIFETIME_VAR}={LIFETIME}, the client saw no "
                                              f"recent links after {LIFETIME} s, but its old session cookie, sent "
                                              "again, still gave them.\nExpected: the app itself refuses a session "
                                              "older than its lifetime (Flask does, given app.permanent_session_"
                                              "lifetime), not only the browser: a copied cookie must not live forever.")
        finally:
            for browser in browsers.values():
                browser.close()
    finally:
        redis.stop()
    return (f"with {LIFETIME_VAR}={LIFETIME}, with and without REDIS_URL, the session and its recent links ended "
            f"{LIFETIME} s after the last visit, and the app refused the old cookie")


def _module_containers(tree: ast.Module) -> dict[str, int]:
    """Names the module binds, at its top level, to a dict, list or set (literal or made by a call): name → line."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        func = value.func if isinstance(value, ast.Call) else None
        called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if isinstance(value, CONTAINER_NODES) or called in CONTAINER_CALLS:
            for target in targets:
                if isinstance(target, ast.Name):
                    found.setdefault(target.id, node.lineno)
    return found


def _locals(func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Names a function makes its own (parameters, plain assignments), unless it declares them global."""
    args = func.args
    names = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg] if a}
    declared = set()
    for node in ast.walk(func):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Global):
            declared.update(node.names)
    return names - declared


def _changed_in_functions(tree: ast.Module, containers: dict[str, int]) -> dict[str, int]:
    """Of those containers, the ones some function changes (item set or deleted, or a mutating method called)."""
    changed: dict[str, int] = {}
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        own = _locals(func)
        for node in ast.walk(func):
            name = None
            if isinstance(node, ast.Subscript) and isinstance(node.ctx, (ast.Store, ast.Del)):
                name = node.value.id if isinstance(node.value, ast.Name) else None
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in MUTATORS and isinstance(node.func.value, ast.Name):
                name = node.func.value.id
            if name in containers and name not in own:
                changed.setdefault(name, containers[name])
    return changed


def process_state(path: Path) -> dict[str, int]:
    """Module-level containers of the Python file at path that its functions change: name → line of definition."""
    tree = parse(path)
    if tree is None:
        return {}
    return _changed_in_functions(tree, _module_containers(tree))


@check("processes.no_process_state", factor=6, title="No per-user state in the process's memory",
       hint="A module-level dict or list that request handlers fill (like SESSIONS) is state of one process: move "
            "what it holds to Redis, the database or the signed session cookie, then delete it.")
def no_process_state(ctx: CheckContext) -> str:
    """The app module has no module-level dict, list or set that its functions fill or change (such as a dict of
    sessions or of pending clicks)."""
    module = app_module_file(ctx)
    path = ctx.path / module
    if not path.is_file():
        raise CheckFailed(f"Seen: no {module} in the folder.\nExpected: the app module, {module}.")
    found = process_state(path)
    if found:
        shown = ", ".join(f"{name} (line {line})" for name, line in sorted(found.items(), key=lambda item: item[1]))
        raise CheckFailed(f"Seen: {module} keeps state in module-level containers that its functions change: "
                          f"{shown}. Each process has its own copy, and loses it when it stops.\n{SHARED}")
    return f"{module} keeps no state of its own between requests in module-level containers"
