"""Factor VII, port binding: the app is a self-contained web service that serves on the port it is given.

The checks start the app the way a platform does: the `web:` line of its Procfile, run with `sh -c` in the app's
folder, in an environment built from requirements.txt alone, with $PORT set (runners: `process_type="web"`).
Two such processes of the same code on two ports must both serve; the server that answers must not be Flask's
development server (and, from factor V's release.py on, neither may `release.py run`, the way production runs
it); a short URL must name the address the request came to. A static reading backs them up: no port or
loopback address is written in the code, the scripts or the Procfile. The runbook gets its usual check.

A server started by a check binds loopback only, whatever it asks for (runners.GUARD): `--bind 0.0.0.0:$PORT`
is right for a platform and a container, and costs nothing here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from .. import procfile
from ..http import Client, json_of
from ..runners import AppFailed, ServingApp
from ..testpage import TestPage
from . import CheckContext, CheckFailed, check
from .app import create_link, recent
from .attached import serve, side_by_side
from .deploy_root import TOOL, DeployRoot
from .runbook import runbook_truth
from .source import Module, _bindings, app_files, python_files, rel
from .text import listing

WEB = "web"
# What Flask's development server (werkzeug's) shows of itself: its Server header, and the warning it prints.
# Servers that are not made for production: werkzeug's (Flask's development server), and the standard library's
# wsgiref and http.server, by their Server headers.
DEV_SERVER_HEADER = re.compile(r"(?i)\b(werkzeug|wsgiserver|simplehttp|basehttp)\b")
DEV_SERVER_WARNING = re.compile(r"(?i)this is a development server|running on http://|debugger is active")
PROXY_HOST = "shortly.example.test"  # the Host a check's request carries, as a proxy in front would pass it on
SCRIPT_SUFFIXES = (".sh", ".bash")
# A port or a loopback/wildcard address written into a script or a Procfile: an option with a number, a bind
# address with one, an assignment of PORT, a default for it, a URL of the machine itself.
SCRIPT_FIXED = [
    (re.compile(r"(?<![\w-])(--port|-p)(=|\s+)\d+\b"), "a port option with a number"),
    (re.compile(r"(?<![\w-])(--bind|-b|--listen|--host-port)(=|\s+)['\"]?[\w.\[\]:*]*:\d+\b"), "a bind address with a port"),
    (re.compile(r"(?<![\w$])PORT=['\"]?\d+"), "PORT set to a number"),
    (re.compile(r"\$\{PORT:?[-=]\d+\}"), "a default for $PORT"),
    (re.compile(r"(?i)\bhttps?://(localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1?\])(:\d+)?"), "the machine's own URL"),
]
# In Python: a text that is the machine's own URL or a bind address with a port.
FIXED_TEXT = re.compile(r"(?i)^(https?://(localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1?\])(:\d*)?(/.*)?|"
                        r"(localhost|127\.0\.0\.1|0\.0\.0\.0|\[?::\]?):\d+)$")
PORT_KEYWORDS = {"port", "bind", "listen", "host_port", "server_port"}
SERVING_CALLS = {"run", "make_server", "run_simple", "serve", "create_server", "bind", "listen", "HTTPServer",
                 "ThreadingHTTPServer", "WSGIServer", "TCPServer"}


def _web_line(ctx: CheckContext) -> str:
    """The Procfile's web line, or CheckFailed saying why there is none (the checks' own reading)."""
    try:
        return procfile.command(ctx.path, WEB)
    except procfile.ProcfileError as exc:
        raise CheckFailed(f"Seen: {exc}.\nExpected: a Procfile in the app's folder whose `web:` line serves the "
                          "app on $PORT, e.g. `web: gunicorn --bind 0.0.0.0:$PORT shortly:app`.") from None


def _serve_web(ctx: CheckContext, env: dict[str, str] | None = None, where: str = "") -> ServingApp:
    line = _web_line(ctx)
    try:
        return serve(ctx, env, process_type=WEB)
    except AppFailed as exc:
        raise CheckFailed(f"{exc}\n(the web process{where}: `{line}`, with $PORT set)\nExpected: the Procfile's web "
                          "line serves the app on the port in $PORT, with only what requirements.txt "
                          "installs.") from None


def _page(app: ServingApp, path: str = "/", where: str = "") -> object:
    answer = app.get(path)
    if answer.status_code != 200:
        raise CheckFailed(f"Seen: GET {path}{where} answered {answer.status_code}.{app.last_words()}\n"
                          "Expected: 200, the app serving.")
    return answer


@check("port_binding.web_on_port", factor=7, title="The Procfile's web process serves on the $PORT it is given",
       hint="Add a Procfile with a `web:` line that starts the app on $PORT, e.g. "
            "`web: gunicorn --bind 0.0.0.0:$PORT shortly:app`, and pin gunicorn in requirements.txt: a platform "
            "picks the port, the app binds it.",
       timeout=60)
def web_on_port(ctx: CheckContext) -> str:
    """Two web processes of the same code and config, each started from the Procfile's `web:` line with its own
    $PORT (in an environment built from requirements.txt alone): both serve the home page and the API on their
    own port, at the same time."""
    _web_line(ctx)
    apps = side_by_side(lambda where: _serve_web(ctx, where=where), [" A", " B"])
    with TestPage() as page:
        for where, app in zip("AB", apps):
            _page(app, "/", f" on web process {where}")
            create_link(app, page.url(f"/port/{where}"), where=f"web process {where}")
    return "two web processes from the Procfile, each on the $PORT it was given, both serve the app"


@check("port_binding.production_server", factor=7, title="A production WSGI server serves it, not Flask's "
       "development server",
       hint="Flask's development server (`app.run`, `flask run`) is made for a laptop. Serve the app with a WSGI "
            "server made for production, declared in requirements.txt: gunicorn (`gunicorn shortly:app`) or "
            "waitress. release.py run must start the same web line.",
       timeout=60)
def production_server(ctx: CheckContext) -> str:
    """The web process of the Procfile answers with a production WSGI server: not werkzeug's development server
    (its Server header, its warning in the output). From factor V on, production runs `release.py run`: a release
    it serves is answered by the same kind of server."""
    def web() -> object:
        app = _serve_web(ctx)
        answer = _page(app)
        _not_the_dev_server(app, answer, "the Procfile's web process")
        recent(app, where="the Procfile's web process")  # the app answers there, not a server of files
        return answer

    def released() -> None:
        with DeployRoot(ctx) as deploy:
            deploy.release(deploy.build(), "port")
            served = deploy.run()
            _not_the_dev_server(served, _page(served, "/", " (release.py run)"), f"`python {TOOL} run`")

    parts = [web, released] if (ctx.path / TOOL).is_file() else [web]
    answer = side_by_side(lambda part: part(), parts)[0]
    ran = "the Procfile's web process" + (f" and `python {TOOL} run`" if len(parts) > 1 else "")
    server = answer.headers.get("Server", "").split("/")[0].strip() or "a server that does not name itself"
    return f"{ran}: served by {server}, not Flask's development server"


def _not_the_dev_server(app: ServingApp, answer, what: str) -> None:
    header = answer.headers.get("Server", "")
    warning = DEV_SERVER_WARNING.search(app.output())
    if DEV_SERVER_HEADER.search(header) or warning:
        seen = f"its Server header says {header!r}" if DEV_SERVER_HEADER.search(header) else \
            f"it printed {warning.group(0)!r}"
        raise CheckFailed(f"Seen: {what} is served by Flask's development server (werkzeug): {seen}.\n"
                          "Expected: a production WSGI server declared in requirements.txt (gunicorn, waitress, "
                          "…) binding $PORT.")


@check("port_binding.short_url", factor=7, title="Short URLs name the address the app was reached at",
       hint="Build a short URL from the request (`request.host_url + code`), never from a fixed base such as "
            "http://localhost:5000/: the app does not know its own port or host name, its requests do.")
def short_url(ctx: CheckContext) -> str:
    """Served on a port of the check's choosing, a link made through the API has a short URL on that address; made
    with the Host header a proxy in front passes on, on that host; the stats page shows the same."""
    app = _serve_web(ctx)
    with TestPage() as page, Client() as behind_proxy:
        link = create_link(app, page.url("/short/direct"))
        expected = f"{app.url}/{link['code']}"
        if link.get("short_url") != expected:
            raise CheckFailed(f"Seen: reached at {ITS_ADDRESS}, the app answered a new link with short_url "
                              f"{_shown(link.get('short_url'), app)}.\nExpected: {ITS_ADDRESS}/<code>: the address "
                              "the request came to, not one written in the code.")
        made = behind_proxy.post(app, "/api/links", json={"url": page.url("/short/proxy")},
                                 headers={"Host": PROXY_HOST})
        proxied = json_of(made) if made.status_code == 201 else {}
        wanted = f"http://{PROXY_HOST}/{proxied.get('code')}"
        if proxied.get("short_url") != wanted:
            raise CheckFailed(f"Seen: asked for a link with `Host: {PROXY_HOST}` (as a proxy in front passes it "
                              f"on), the app answered {made.status_code} with short_url "
                              f"{_shown(proxied.get('short_url'), app)}.\nExpected: http://{PROXY_HOST}/<code>.")
        stats = behind_proxy.get(app, f"/stats/{proxied['code']}", headers={"Host": PROXY_HOST})
        if stats.status_code != 200 or wanted not in stats.text:
            raise CheckFailed(f"Seen: the stats page of that link, asked for with `Host: {PROXY_HOST}`, answered "
                              f"{stats.status_code}{' without ' + wanted if stats.status_code == 200 else ''}.\n"
                              "Expected: 200, showing the short URL on the host it was asked for.")
    return "short URLs name the address each request came to: the port it was served on, the host a proxy passed on"


ITS_ADDRESS = "http://127.0.0.1:<its port>"


def _shown(value, app: ServingApp) -> str:
    """A short URL the app gave, its address written as ITS_ADDRESS (messages do not change with the port)."""
    return repr(value.replace(app.url, ITS_ADDRESS)) if isinstance(value, str) else repr(value)


# -- what the code says -----------------------------------------------------------------------------------------

def _number(node: ast.AST, tree: ast.AST | None = None, _depth: int = 0) -> int | None:
    """A port written as a number: 5000 or "5000", or a name the module binds to one only (PORT = 5000)."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, int) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node.value, str) and node.value.strip().isdigit():
            return int(node.value)
    if isinstance(node, ast.Call) and node.args and getattr(node.func, "id", "") in ("int", "str"):
        return _number(node.args[0], tree, _depth + 1)  # int(5000), int(DEFAULT_PORT)
    if isinstance(node, ast.Name) and tree is not None and _depth < 5:
        values = [_number(v, tree, _depth + 1) if v is not None else None for v in _bindings(tree, node.id)]
        return values[0] if values and all(v is not None and v == values[0] for v in values) else None
    return None


def _reads_port(node: ast.AST) -> bool:
    """Is node a read of PORT from the environment (os.environ.get("PORT"), os.getenv("PORT"), env.get("PORT"),
    os.environ["PORT"])?"""
    if isinstance(node, ast.Call) and node.args and isinstance(node.func, ast.Attribute) \
            and node.func.attr in ("get", "getenv") and _text(node.args[0]) == "PORT":
        return True
    if isinstance(node, ast.Subscript) and _text(node.slice) == "PORT":
        return True
    return isinstance(node, ast.Call) and bool(node.args) and _reads_port(node.args[0])  # int(...)


def _text(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def fixed_in_python(module: Module, path: str) -> list[str]:
    """Where a Python file fixes a port or the machine's address: a serving call given a port number, a default
    for PORT, a text that is a loopback URL or a bind address with a port."""
    found = []
    for node in ast.walk(module.tree):
        where = f"{path}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            tree = module.tree
            numbers = [(k.arg, _number(k.value, tree)) for k in node.keywords if k.arg in PORT_KEYWORDS]
            if name in SERVING_CALLS:
                numbers += [("a port", _number(a, tree)) for a in node.args[:2]]
                numbers += [("an address", _number(e, tree)) for a in node.args[:1] if isinstance(a, ast.Tuple)
                            for e in a.elts[1:2]]
            for what, number in numbers:
                if number is not None and number > 0:
                    found.append(f"{what} {number} given to {name or 'a call'}() at {where}")
            if _reads_port(node) and len(node.args) > 1 and _number(node.args[1], tree) is not None:
                found.append(f"a default port ({_number(node.args[1], tree)}) for PORT at {where}")
        elif isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or) and any(_reads_port(v) for v in node.values):
            defaults = [_number(v, module.tree) for v in node.values if _number(v, module.tree) is not None]
            if defaults:
                found.append(f"a default port ({defaults[0]}) for PORT at {where}")
        text = _text(node)
        if text is not None and FIXED_TEXT.match(text.strip()):
            found.append(f"{text.strip()!r} at {where}")
    return found


def fixed_in_script(text: str, path: str) -> list[str]:
    """Where a shell script or a Procfile fixes a port or the machine's address (comments left out)."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        code = re.sub(r"(^|\s)#.*$", "", line)
        for pattern, what in SCRIPT_FIXED:
            match = pattern.search(code)
            if match:
                found.append(f"{what} ({match.group(0).strip()}) at {path}:{number}")
    return found


def fixed_ports(root: Path) -> list[str]:
    """Every place the app's code, scripts or Procfile fix a port or the machine's address."""
    found = []
    for path in python_files(root):
        module = Module.read(path, root)
        if module is not None:
            found += fixed_in_python(module, rel(path, root))
    for path in app_files(root):
        if path.name == procfile.NAME or path.suffix in SCRIPT_SUFFIXES or _shebang_shell(path):
            found += fixed_in_script(path.read_text(errors="replace"), rel(path, root))
    return found


def _shebang_shell(path: Path) -> bool:
    if path.suffix or not path.is_file():
        return False
    try:
        with open(path, "rb") as handle:
            first = handle.readline(200)
    except OSError:
        return False
    return first.startswith(b"#!") and re.search(rb"\b(ba|da|z|k)?sh\b", first) is not None


@check("port_binding.no_fixed_port", factor=7, title="No port or address of its own is written in the code",
       hint="Read the port from $PORT, with no default: a missing PORT is a mistake to report, not a reason to pick "
            "5000. The Procfile and the scripts pass $PORT on; nothing names localhost or 127.0.0.1 as the app's "
            "own address.")
def no_fixed_port(ctx: CheckContext) -> str:
    """No file of the app (Python, shell scripts, the Procfile) gives a serving call a port number, defaults
    PORT to one, or writes a loopback URL or a bind address with a port."""
    found = fixed_ports(ctx.path)
    if found:
        raise CheckFailed(f"Seen: the app fixes its own port or address: {listing(found, 3)}.\n"
                          "Expected: the port comes from $PORT alone, and the address from the request.")
    return "no port or address of its own is written in the code, the scripts or the Procfile"


@check("port_binding.runbook", factor=7, title="The runbook says how the app serves itself",
       hint="OPS.md: say that the Procfile's web line serves the app (with gunicorn) on the $PORT whoever runs it "
            "picks, and take out the port 5000 and `python3 shortly.py` as the way to run it.")
def runbook(ctx: CheckContext) -> str:
    """OPS.md no longer says the app is at port 5000 or is run with `python3 shortly.py`, and says how it is
    served: the Procfile and PORT (the catalogue's `runbook` of 07_port_binding)."""
    return runbook_truth(ctx, "07_port_binding")
