"""Serve a learner's WSGI app on a given loopback port, the way the checks start it.

Run as ``python launch.py MODULE:ATTR PORT`` (by path, so it also works in a clean
virtual environment that does not have factorlab installed). It imports the app
from the current working directory, so import-time side effects happen as they
would in production, and serves it with werkzeug, which Flask always brings.
"""

import importlib
import os
import sys


def load_app(spec):
    """Import MODULE:ATTR from the working directory and return the WSGI app."""
    module_name, _, attr = spec.partition(":")
    sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    call = attr.endswith("()")
    app = getattr(module, attr.removesuffix("()") or "app")
    return app() if call else app


def main(argv):
    if len(argv) != 3:
        print("usage: launch.py MODULE:ATTR PORT", file=sys.stderr)
        return 2
    app = load_app(argv[1])
    from werkzeug.serving import make_server

    server = make_server(os.environ.get("FACTORLAB_BIND", "127.0.0.1"), int(argv[2]), app, threaded=True)
    print(f"factorlab launcher: serving {argv[1]}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
