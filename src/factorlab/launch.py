"""Serve a learner's WSGI app on a given loopback port, the way the checks start it.

Run as ``python launch.py MODULE:ATTR [PORT]`` (by path, so it also works in a clean
virtual environment or an image that does not have factorlab installed; PORT defaults
to the environment variable of that name). It imports the app from the current working
directory, so import-time side effects happen as they would in production, and serves
it with werkzeug, which Flask always brings. SIGTERM (``docker stop``) ends it cleanly.
"""

import importlib
import os
import signal
import sys


def load_app(spec):
    """Import MODULE:ATTR from the working directory and return the WSGI app."""
    module_name, _, attr = spec.partition(":")
    sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    call = attr.endswith("()")
    app = getattr(module, attr.removesuffix("()") or "app")
    return app() if call else app


def stop(signum, frame):
    """Exit cleanly on SIGTERM. A second SIGTERM (GNU timeout in a container passes it on to its whole group)
    is ignored from then on: arriving while the interpreter shuts down, it would kill it with code 143."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(0)


def main(argv):
    port = argv[2] if len(argv) == 3 else os.environ.get("PORT")
    if len(argv) not in (2, 3) or not port:
        print("usage: launch.py MODULE:ATTR [PORT]  (or set PORT)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, stop)  # as PID 1 in a container, SIGTERM is ignored otherwise
    app = load_app(argv[1])
    from werkzeug.serving import make_server

    server = make_server(os.environ.get("FACTORLAB_BIND", "127.0.0.1"), int(port), app, threaded=True)
    print(f"factorlab launcher: serving {argv[1]}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
