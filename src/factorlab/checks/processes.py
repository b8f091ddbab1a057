"""Factor VI, processes: the app runs as stateless processes that share nothing but their backing services.

The checks run instances of the app side by side with one config (one PostgreSQL database, one private
Redis) and talk to them through one HTTP client, as a browser behind a load balancer would: a cookie goes
to a host, whatever its port, so every instance gets the same session cookie. They kill an instance
outright, and they let a short session expire. A static check backs them up: no module-level dict or list
of the app that its functions fill (registries filled at import and pools of connections are code, not state),
no object made once for the process that its methods fill, nothing requests change on the app object.
"""

from __future__ import annotations

import ast
import base64
import importlib
import json
import re
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from requests.cookies import RequestsCookieJar

from ..http import Client
from ..runners import ServingApp
from ..testpage import TestPage
from . import CheckContext, CheckFailed, check
from .app import REQUIRED_APP_ENV, clicks, clicks_text, create_link, follow, recent, shorten
from .attached import postgres_database, redis_server, serve, set_up, side_by_side
from .runbook import runbook_truth
from .source import Module, python_files, rel
from .text import listing

CLICKS = 4  # followed alternately on two instances
CLICKS_BEFORE_KILL = 3
LIFETIME = 1  # seconds: SHORTLY_SESSION_LIFETIME in the expiry check
LIFETIME_VAR = "SHORTLY_SESSION_LIFETIME"
# A module-level name bound to one of these holds a container a function may fill.
CONTAINER_CALLS = {"dict", "list", "set", "defaultdict", "OrderedDict", "Counter", "deque"}
CONTAINER_NODES = (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)
MUTATORS = {"append", "appendleft", "extend", "insert", "setdefault", "update", "add", "pop", "popitem",
            "remove", "discard", "clear"}
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
# Decorators and calls that make a function a view or a hook of a request (Flask's app and blueprints).
HANDLER_HOOKS = {"route", "get", "post", "put", "patch", "delete", "before_request", "after_request",
                 "teardown_request", "teardown_appcontext", "errorhandler", "before_app_request", "after_app_request",
                 "app_errorhandler", "context_processor", "url_value_preprocessor", "url_defaults", "add_url_rule"}
# Calls that make a connection object: a container of those (one engine per URL) is a pool, not anyone's state.
CONNECTION_FACTORIES = {"create_engine", "from_url", "Redis", "StrictRedis", "ConnectionPool", "connect",
                        "MongoClient", "sessionmaker", "create_pool"}
SETUP_METHODS = {"__init__", "__new__", "__post_init__", "__init_subclass__", "__set_name__"}
APP_OBJECTS = {"flask.current_app"}  # the app, by another name
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
    """Two instances with the same DATABASE_URL (PostgreSQL) and REDIS_URL, each in a working directory, a /tmp
    and a /var of its own (as on two machines), and one client: links made alternately on A and B, through the API and the form, are all
    listed, newest first, by GET /api/recent and by the home page of both; a link followed alternately on A and B
    reports every click on both."""
    with postgres_database(ctx, "procs") as (_, database), redis_server() as redis:
        env = {**REQUIRED_APP_ENV, "DATABASE_URL": database, "REDIS_URL": redis.url()}
        set_up(ctx, env)
        apps = {"A": ctx.runner.start(env), "B": ctx.runner.start(env)}
        with TestPage() as page, Client() as browser:
            places = ["A", "B", "A", "B"]
            made = []
            for i, place in enumerate(places):
                url = page.url(f"/shared/{i}")
                made.append(create_link(apps[place], url, client=browser, where=place)["code"] if i % 2 == 0 else
                            shorten(apps[place], url, client=browser, where=place))
            for place, app in apps.items():
                listed = recent(app, client=browser, where=place)
                home = browser.get(app, "/").text
                if listed != made[::-1] or not all(code in home for code in made):
                    seen = _which(listed, made, places) if listed != made[::-1] else "all, but its home page not"
                    raise CheckFailed(f"Seen: one client made {len(made)} links, alternately on instances A and B "
                                      f"(through the API and the form; same DATABASE_URL and REDIS_URL); on {place} "
                                      f"GET /api/recent listed {seen}.\n{SHARED} Here: all {len(made)}, newest "
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
    return (f"two instances, one client: both list all {len(made)} recent links, newest first, and both count "
            f"all {CLICKS} clicks")


@check("processes.survives_kill", factor=6, title="A killed process loses nothing",
       hint="A process may die at any moment (kill -9, a crash, a scale-down) and run no clean-up code: write each "
            "click to the database at once, and keep the recent links where they outlive the process: without "
            "REDIS_URL, in the signed session cookie.",
       timeout=60)
def survives_kill(ctx: CheckContext) -> str:
    """Without REDIS_URL (the recent links then travel in the session cookie): after links and clicks on one
    instance, it is killed with SIGKILL (no clean-up runs). A new instance with the same config shows the same
    client its recent links, and every click."""
    with postgres_database(ctx, "procs") as (_, database):
        env = {**REQUIRED_APP_ENV, "DATABASE_URL": database}
        set_up(ctx, env)
        first = ctx.runner.start(env)
        with TestPage() as page, Client() as browser:
            made = [create_link(first, page.url("/kept/0"), client=browser, where="the first instance")["code"],
                    shorten(first, page.url("/kept/1"), client=browser, where="the first instance")]
            for _ in range(CLICKS_BEFORE_KILL):
                follow(first, made[0], client=browser, where="the first instance")
            first.kill()
            second = ctx.runner.start(env)
            listed = recent(second, client=browser, where="the new instance")
            if listed != made[::-1]:
                raise CheckFailed(f"Seen: without REDIS_URL, a client made {len(made)} links on an instance that was "
                                  f"then killed (SIGKILL); GET /api/recent on a new instance with the same config "
                                  f"listed {_which(listed, made, ['the killed one'] * len(made))}.\n{SHARED} Here: "
                                  "both links, newest first.")
            count = clicks(second, made[0], client=browser)
            if count != CLICKS_BEFORE_KILL:
                raise CheckFailed(f"Seen: a link was followed {CLICKS_BEFORE_KILL} times on an instance that was then "
                                  f"killed (SIGKILL); a new instance with the same config {clicks_text(count)} "
                                  f"clicks.\nExpected: {CLICKS_BEFORE_KILL}: a process that dies owes nothing, so "
                                  "each click is in the database once the redirect has been sent.")
    return (f"after a kill -9, a new instance shows the client its {len(made)} recent links and all "
            f"{CLICKS_BEFORE_KILL} clicks")


def _wait_past_lifetime(last_answer: float, meanwhile=None) -> None:
    """Sleep until a session last renewed at last_answer is over LIFETIME old, in whole seconds: Flask (through
    itsdangerous) compares whole-second timestamps, so allow for a second it may round down. meanwhile() runs
    first, in time that would be slept anyway."""
    until = int(last_answer) + LIFETIME + 1 + 0.05
    if meanwhile is not None:
        meanwhile()
    time.sleep(max(0.0, until - time.time()))


def _session_id(cookie: str | None) -> str | None:
    """The sid in a Flask session cookie's payload (read, not verified: the check only looks for it)."""
    try:
        payload = (cookie or "").lstrip(".").split(".")[0]
        data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        data = zlib.decompress(data) if (cookie or "").startswith(".") else data
        found = json.loads(data).get("sid")
        return found if isinstance(found, str) else None
    except (ValueError, zlib.error, AttributeError):
        return None


def _lists(item: str, codes: list[str]) -> bool:
    """Does a stored item list some of the codes: it is one, or a JSON array or a comma-separated list of
    codes that holds one? (A cached link whose JSON names its code is no session's list.)"""
    if item in codes:
        return True
    try:
        listed = json.loads(item)
    except ValueError:
        listed = item.split(",") if re.fullmatch(r"[\w-]+(,[\w-]+)+", item) else None
    return isinstance(listed, list) and any(code in listed for code in codes)


def _leftovers(store, sid: str | None, codes: list[str]) -> list[str]:
    """Keys of the session still in the store: named with its id, or holding its id (anywhere in what they
    keep) or a list of its codes: a list, a set or sorted set, a hash's fields and values, a string."""
    found = []
    for key in store.scan_iter(count=1000):
        name = key.decode(errors="replace")
        if sid and sid in name:
            found.append(name)
            continue
        kind = store.type(key).decode()
        held = store.lrange(key, 0, -1) if kind == "list" else store.smembers(key) if kind == "set" else \
            store.zrange(key, 0, -1) if kind == "zset" else \
            [part for pair in store.hgetall(key).items() for part in pair] if kind == "hash" else \
            [store.get(key) or b""] if kind == "string" else []
        items = [item.decode(errors="replace") for item in held]
        if any((sid and sid in item) or _lists(item, codes) for item in items):
            found.append(name)
    return found


@check("processes.session_expiry", factor=6, title=f"Sessions expire after {LIFETIME_VAR}",
       hint="Make the session permanent with a lifetime from SHORTLY_SESSION_LIFETIME: "
            "app.permanent_session_lifetime = timedelta(seconds=…) and session.permanent = True. Flask then refuses "
            "an older cookie; give what Redis keeps for the session the same expiry (EXPIRE).",
       timeout=60)
def session_expiry(ctx: CheckContext) -> str:
    """With SHORTLY_SESSION_LIFETIME=1, with and without REDIS_URL: a new link is listed by GET /api/recent at
    once, and no longer a little after the lifetime since the last visit, though the client still sends its
    session cookie (the app itself refuses it), and nothing of the session is left in Redis."""
    shared = ctx.runner.shared_dir()
    with redis_server() as redis:
        base = {**REQUIRED_APP_ENV, LIFETIME_VAR: str(LIFETIME)}
        configs = {"with REDIS_URL": {**base, "DATABASE_URL": f"sqlite:///{shared / 'redis.db'}",
                                      "REDIS_URL": redis.url()},
                   "without REDIS_URL": {**base, "DATABASE_URL": f"sqlite:///{shared / 'cookie.db'}"}}
        apps = dict(zip(configs, side_by_side(lambda env: serve(ctx, env), configs.values())))
        with TestPage() as page:
            visits = {label: _visit(app, page, label) for label, app in apps.items()}
            # The redis library, for reading what is left (a fifth of a second to import), loads while we wait.
            _wait_past_lifetime(max(visit.last_answer for visit in visits.values()),
                                meanwhile=lambda: importlib.import_module("redis"))
            for label, app in apps.items():
                with visits[label].browser as browser:
                    if recent(app, client=browser, where=f"the instance {label}"):
                        raise CheckFailed(
                            f"Seen: {label} and {LIFETIME_VAR}={LIFETIME}, GET /api/recent with the session "
                            f"cookie still listed the link more than {LIFETIME} s after the client's last visit."
                            f"\nExpected: an empty list: the app refuses a session older than its lifetime "
                            "(Flask does, given app.permanent_session_lifetime and session.permanent), and what it "
                            "kept for the session expires with it. A session that never ends keeps its data for "
                            "good, and anyone holding a copy of its cookie keeps it too.")
        with redis.client() as store:
            visit = visits["with REDIS_URL"]
            left = _leftovers(store, _session_id(visit.cookies.get("session")), [visit.code])
        if left:
            raise CheckFailed(f"Seen: with REDIS_URL and {LIFETIME_VAR}={LIFETIME}, Redis still holds "
                              f"{listing(left, 2)} after the session ended.\nExpected: what Redis keeps for a "
                              "session expires with it (EXPIRE), or it outlives every session for good.")
    return (f"with {LIFETIME_VAR}={LIFETIME}, with and without REDIS_URL, the session ended {LIFETIME} s after the "
            "last visit, the app refused its cookie, and Redis kept nothing of it")


class _KeptCookies(RequestsCookieJar):
    """A cookie jar that stores every cookie whatever its Expires says, as a copy of a cookie is kept. Flask
    rounds Expires down to the second: an answer that arrives in the next second carries a cookie already
    expired, which a plain jar drops (with the one before it) before Client(keep_cookies=True) can keep it.
    What the app then refuses, it refuses itself."""

    def _normalized_cookie_tuples(self, attrs_set):
        return [(name, value, {key: v for key, v in standard.items() if key != "expires"}, rest)
                for name, value, standard, rest in super()._normalized_cookie_tuples(attrs_set)]


def _browser() -> Client:
    """A visitor who keeps every cookie the app sets, for as long as the check likes."""
    browser = Client(keep_cookies=True)
    browser.session.cookies = _KeptCookies()
    return browser


@dataclass
class _Visit:
    browser: Client
    code: str
    cookies: dict
    last_answer: float


def _visit(app: ServingApp, page: TestPage, label: str, attempts: int = 5) -> _Visit:
    """A visitor makes a link and sees it listed at once. Listed or not is only a verdict when the listing
    answered within the lifetime of the visit that made the link; on a machine too busy for that, visit again."""
    where = f"the instance {label}"
    for _ in range(attempts):
        browser = _browser()
        asked = time.time()
        code = create_link(app, page.url("/short-lived"), client=browser, where=where)["code"]
        listed = recent(app, client=browser, where=where)
        last_answer = time.time()
        if code in listed:
            return _Visit(browser, code, {cookie.name: cookie.value for cookie in browser.cookies}, last_answer)
        browser.close()
        if last_answer - asked < LIFETIME:
            raise CheckFailed(f"Seen: {label} and {LIFETIME_VAR}={LIFETIME}, GET /api/recent right after a new "
                              f"link did not list it.\nExpected: the new link, listed for the {LIFETIME} s the "
                              "session lasts.")
    raise CheckFailed(f"Seen: this machine was too busy to ask {label} for its recent links within "
                      f"{LIFETIME} s of making one, {attempts} times.\nExpected: try the check again when the "
                      "machine is less busy.")


def _is_container(value: ast.AST) -> bool:
    func = value.func if isinstance(value, ast.Call) else None
    called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return isinstance(value, CONTAINER_NODES) or called in CONTAINER_CALLS


def _module_containers(tree: ast.Module) -> dict[str, int]:
    """Names the module binds, at its top level, to a dict, list or set (literal or made by a call), and the
    container attributes of its classes (as Class.name): name → line."""
    found = {}
    for node, prefix in [*((n, "") for n in tree.body),
                         *((n, f"{c.name}.") for c in tree.body if isinstance(c, ast.ClassDef) for n in c.body)]:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if _is_container(value):
            for target in targets:
                if isinstance(target, ast.Name):
                    found.setdefault(prefix + target.id, node.lineno)
    return found


def _locals(func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Names a function makes its own (parameters, plain assignments), unless it declares them global."""
    args = func.args
    names = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg] if a}
    return names | {n.id for n in ast.walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)} \
        - _globals(func)


def _globals(func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    return {name for node in ast.walk(func) if isinstance(node, ast.Global) for name in node.names}


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{node.value.id}.{node.attr}"
    return None


def _root(node: ast.AST) -> tuple[str, str] | None:
    """(X, attr) for X.attr, X.attr.more or X.attr[...]...: the name an attribute chain starts from, and the
    first attribute after it."""
    attr = None
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Attribute):
            attr = node.attr
        node = node.value
    return (node.id, attr) if isinstance(node, ast.Name) and attr else None


def _connection(value: ast.AST | None) -> bool:
    """A connection object (an engine, a pool, a client) made by the call: a cache of those is no one's state."""
    return isinstance(value, ast.Call) and (getattr(value.func, "attr", None) or getattr(value.func, "id", "")) \
        in CONNECTION_FACTORIES


def _stores_connections(func: ast.AST) -> set[int]:
    """Items and arguments of a function that store a connection object: x[k] = create_engine(...),
    x.setdefault(k, redis.Redis.from_url(...)) (ids of the targets and calls)."""
    found = set()
    for node in ast.walk(func):
        if isinstance(node, ast.Assign) and _connection(node.value):
            found |= {id(target) for target in node.targets}
        elif isinstance(node, ast.Call) and any(_connection(arg) for arg in node.args):
            found.add(id(node))
    return found


def _import_time(tree: ast.Module) -> set[ast.AST]:
    """The module's functions (and the methods of its objects made once) that only ever run while it is imported:
    each is called, or applied as a decorator, by module-level code or by such functions alone, and never handed
    on as a value (to a route, a hook, atexit) that may call it later. A registry filled by a decorator, or an
    engine made once at start-up, is code."""
    top = {node.name: node for node in tree.body if isinstance(node, FUNCTIONS)}
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    objects = {name: of for name, (of, _) in _instances(tree, classes).items() if "." not in name}
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)} | \
             {id(d) for node in ast.walk(tree) if isinstance(node, (*FUNCTIONS, ast.ClassDef)) for d in node.decorator_list}
    callers: dict[int, set] = {}  # id of a function → who uses it: None (the module), id of a function, or why not
    functions: dict[int, ast.AST] = {}

    def used(function: ast.AST, node: ast.AST, owner) -> None:
        functions[id(function)] = function
        callers.setdefault(id(function), set()).add(owner if id(node) in called else "<value>")

    def visit(node: ast.AST, owner) -> None:
        if isinstance(node, FUNCTIONS):
            for part in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]:
                if part is not None:
                    visit(part, owner)
            inner = id(node) if owner is None and top.get(node.name) is node else "<later>"
            for statement in node.body:
                visit(statement, inner)
            return
        if isinstance(node, ast.Lambda):
            visit(node.body, "<later>")
            return
        if isinstance(node, ast.Name) and node.id in top and isinstance(node.ctx, ast.Load):
            used(top[node.id], node, owner)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            of = objects.get(node.value.id)
            method = _methods(classes[of]).get(node.attr) if of else None
            if method is not None:
                used(method, node, owner)
        for child in ast.iter_child_nodes(node):
            visit(child, owner)

    for statement in tree.body:
        visit(statement, None)
    at_import = {key for key, seen in callers.items() if seen}
    changed = True
    while changed:
        changed = False
        for key in list(at_import):
            if any(owner is not None and owner != key and owner not in at_import for owner in callers[key]):
                at_import.discard(key)
                changed = True
    return {functions[key] for key in at_import}


def _changed_in_functions(tree: ast.Module, containers: dict[str, int], skip: set[ast.AST]) -> dict[str, int]:
    """Of those containers, the ones some function changes (an item set or deleted, a mutating method called,
    += on it); and module-level names a function declares global and then adds to (x += …, x = [y] + x).
    Functions that only run at import (skip) change nothing later; a container of connections is no state."""
    changed: dict[str, int] = {}
    level = {t.id: n.lineno for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
             for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
    for func in ast.walk(tree):
        if not isinstance(func, FUNCTIONS) or func in skip:
            continue
        own, declared, pools = _locals(func), _globals(func), _stores_connections(func)
        for node in ast.walk(func):
            name = None
            if isinstance(node, (ast.Subscript,)) and isinstance(node.ctx, (ast.Store, ast.Del)) and id(node) not in pools:
                name = _dotted(node.value)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATORS \
                    and id(node) not in pools:
                name = _dotted(node.func.value)
            elif isinstance(node, ast.AugAssign):
                name = _dotted(node.target)
                if name in declared and name in level:
                    changed.setdefault(name, level[name])
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id in declared and target.id in level and \
                            isinstance(node.value, ast.BinOp) and any(
                            isinstance(n, ast.Name) and n.id == target.id for n in ast.walk(node.value)):
                        changed.setdefault(target.id, level[target.id])
            if name in containers and name.split(".")[0] not in own:
                changed.setdefault(name, containers[name])
    return changed


def _methods(cls: ast.ClassDef) -> dict[str, ast.AST]:
    return {node.name: node for node in cls.body if isinstance(node, FUNCTIONS)}


def _first_arg(func: ast.AST) -> str | None:
    args = [*func.args.posonlyargs, *func.args.args]
    static = any(getattr(d, "id", None) == "staticmethod" for d in func.decorator_list)
    return args[0].arg if args and not static else None


def _instances(tree: ast.Module, classes: dict[str, ast.ClassDef]) -> dict[str, tuple[str, int]]:
    """Objects of the module's own classes made once, at its top level (x = C()) or as a class attribute
    (as Class.x): name → (class, line)."""
    found = {}
    for node, prefix in [*((n, "") for n in tree.body),
                         *((n, f"{c.name}.") for c in classes.values() for n in c.body)]:
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in classes:
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                if isinstance(target, ast.Name):
                    found[prefix + target.id] = (value.func.id, node.lineno)
    return found


def _object_state(tree: ast.Module, skip: set[ast.AST]) -> dict[str, int]:
    """State kept in objects of the module's own classes: a container of the class (shared by every object)
    that a method changes through self or cls, and a container or counter of an object made once for the
    process (`fallback = Fallback()`) that a method changes: name → line where it is defined or made."""
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    instances = _instances(tree, classes)
    found: dict[str, int] = {}
    for name, cls in classes.items():
        shared = {target.id: node.lineno for node in cls.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                  and node.value is not None and _is_container(node.value)
                  for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                  if isinstance(target, ast.Name)}
        own = {node.targets[0].attr for method in _methods(cls).values() for node in ast.walk(method)
               if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Attribute)
               and isinstance(node.targets[0].value, ast.Name) and node.targets[0].value.id == _first_arg(method)
               and _is_container(node.value)}
        for method in _methods(cls).values():
            me = _first_arg(method)
            if me is None or method.name in SETUP_METHODS or method in skip:
                continue
            pools = _stores_connections(method)
            for node in ast.walk(method):
                target, counted = None, False
                if isinstance(node, ast.Subscript) and isinstance(node.ctx, (ast.Store, ast.Del)) \
                        and id(node) not in pools:
                    target = node.value
                elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                        node.func.attr in MUTATORS and id(node) not in pools:
                    target = node.func.value
                elif isinstance(node, ast.AugAssign):
                    target, counted = node.target, True
                elif isinstance(node, ast.Assign) and isinstance(node.value, ast.BinOp):
                    target = next((t for t in node.targets if isinstance(t, ast.Attribute) and any(
                        ast.dump(n) == ast.dump(t) for n in ast.walk(node.value) if isinstance(n, ast.Attribute))), None)
                    counted = target is not None
                if not (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                        and target.value.id == me):
                    continue
                if target.attr in shared:
                    found.setdefault(f"{name}.{target.attr}", shared[target.attr])
                elif target.attr in own or counted:
                    for instance, (of, line) in instances.items():
                        if of == name:
                            found.setdefault(f"{instance}.{target.attr}", line)
    return found


def _handlers_reach(tree: ast.Module) -> list[ast.AST]:
    """The functions a request may run: the app's views and hooks (@app.get, @app.before_request,
    app.add_url_rule(..., view_func=f), ...), and every function of the module they call or hand on, through
    the module's own objects and classes too."""
    top = {node.name: node for node in tree.body if isinstance(node, FUNCTIONS)}
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    instances = {name: of for name, (of, _) in _instances(tree, classes).items()}
    owner = {id(method): cls for cls in classes.values() for method in _methods(cls).values()}
    reached: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, FUNCTIONS) and any(
                getattr(d.func if isinstance(d, ast.Call) else d, "attr", None) in HANDLER_HOOKS
                for d in node.decorator_list):
            reached.append(node)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) in HANDLER_HOOKS:
            reached += [top[arg.id] for arg in [*node.args, *(k.value for k in node.keywords)]
                        if isinstance(arg, ast.Name) and arg.id in top]
    for func in reached:  # grows as it goes
        me, cls = _first_arg(func), owner.get(id(func))
        for node in ast.walk(func):
            found = None
            if isinstance(node, ast.Name) and node.id in top:
                found = top[node.id]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                of = instances.get(node.value.id) or (node.value.id if node.value.id in classes else None) or \
                    (cls.name if cls is not None and node.value.id == me else None)
                found = _methods(classes[of]).get(node.attr) if of in classes else None
            if found is not None and all(found is not seen for seen in reached):
                reached.append(found)
    return reached


def _app_state(module: Module) -> dict[str, int]:
    """What requests change on objects the module makes once for the process (the app and its extensions and
    config, a client, an object of its own): an item set or deleted, a mutating method called, an attribute
    set, all in the functions a request may run: X.attr → line of the change."""
    tree = module.tree
    objects = {target.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
               and isinstance(node.value, ast.Call)
               for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
               if isinstance(target, ast.Name)}
    found: dict[str, int] = {}
    for func in _handlers_reach(tree):
        own, pools = _locals(func) - _globals(func), _stores_connections(func)
        for node in ast.walk(func):
            targets = []
            if isinstance(node, ast.Subscript) and isinstance(node.ctx, (ast.Store, ast.Del)) and id(node) not in pools:
                targets = [node.value]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATORS \
                    and id(node) not in pools:
                targets = [node.func.value]
            elif isinstance(node, ast.AugAssign):
                targets = [node.target]
            elif isinstance(node, ast.Assign) and not _connection(node.value) and not (
                    isinstance(node.value, ast.Call) and not _is_container(node.value)):
                targets = [t for t in node.targets if isinstance(t, ast.Attribute)
                           and not isinstance(node.value, (ast.BoolOp, ast.IfExp))]
            for target in targets:
                root = _root(target) if isinstance(target, (ast.Attribute, ast.Subscript)) else None
                if root is None or root[0] in own:
                    continue
                name, attr = root
                if name in objects or module.qualified(ast.Name(id=name, ctx=ast.Load())) in APP_OBJECTS:
                    found.setdefault(f"{name}.{attr}", node.lineno)
    return found


def process_state(path: Path) -> dict[str, int]:
    """State a Python file keeps in the process: module-level containers (or class attributes) that its
    functions change, module-level names they add to, containers of objects made once for the process that
    their methods change, and what requests change on the app and the module's other objects: name → line
    (of the definition; of the change, for what requests change on an object)."""
    module = Module.read(path)
    if module is None:
        return {}
    tree = module.tree
    at_import = _import_time(tree)
    found = _changed_in_functions(tree, _module_containers(tree), at_import)
    for name, line in [*_object_state(tree, at_import).items(), *_app_state(module).items()]:
        found.setdefault(name, line)
    return found


@check("processes.no_process_state", factor=6, title="No per-user state in the process's memory",
       hint="A module-level dict or list that request handlers fill (like SESSIONS), or one kept on an object made "
            "once for the process or on the app (app.extensions, app.config), is state of one process: move what it "
            "holds to Redis, the database or the signed session cookie, then delete it.")
def no_process_state(ctx: CheckContext) -> str:
    """No Python file of the app keeps state in the process: no module-level dict, list or set (nor a class's)
    that its functions fill or change after import, no module-level name a function adds to (a dict of sessions,
    a list of recent links, a counter of pending clicks), no container of an object made once for the process
    that its methods fill, and nothing a request changes on the app (app.extensions, app.config) or another
    object made once. A registry filled at import and a cache of connections (an engine per URL) are not state."""
    found = [f"{name} ({rel(path, ctx.path)}:{line})" for path in python_files(ctx.path)
             for name, line in sorted(process_state(path).items(), key=lambda item: item[1])]
    if found:
        raise CheckFailed(f"Seen: state kept in the process, changed by its functions: {listing(found, 4)}. Each "
                          f"process has its own copy, and loses it when it stops.\n{SHARED}")
    return "no state of its own kept between requests in the process's memory"


@check("processes.runbook", factor=6, title="The runbook says processes are disposable and share nothing",
       hint="Replace the 'Known quirks' of OPS.md with what is true now: any number of processes side by side, "
            "any of them killed at any time; and list SHORTLY_SESSION_LIFETIME in .env.example and OPS.md.")
def runbook(ctx: CheckContext) -> str:
    """OPS.md no longer says the recent links live in one process's memory or warns against a second copy, and
    OPS.md and .env.example name every variable the app reads."""
    return runbook_truth(ctx, "06_processes")
