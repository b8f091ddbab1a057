"""Loaded by every Python a check starts from a Procfile line (the runners put this folder first on PYTHONPATH):
a server that asks for all interfaces gets loopback instead.

A twelve-factor web process binds the $PORT it is given on every interface (`gunicorn` does so by itself once
PORT is set), which is right on a platform and in a container. A check runs it on the learner's machine, where
the app has no business being reachable from the network, and containers share the host's network: so a bind
to 0.0.0.0 (or "", or ::) becomes a bind to 127.0.0.1 (for ::, the same address v4-mapped, or ::1 for a
socket that is IPv6 only). Nothing else changes, and nothing of factorlab
is imported: this runs inside the learner's own environment. Another sitecustomize further along the path (a
distribution's) is still run after this one.
"""

import importlib.machinery
import importlib.util
import os
import socket
import sys

_ANYWHERE = {socket.AF_INET: ("", "0.0.0.0"), socket.AF_INET6: ("", "::", "::0", "0:0:0:0:0:0:0:0")}
_bind = socket.socket.bind


def _loopback(sock):
    """Loopback for this socket. An IPv6 socket bound to :: also takes IPv4 (unless it is IPv6-only): it gets
    IPv4's loopback, v4-mapped, which is what a client of 127.0.0.1 reaches; an IPv6-only one gets ::1."""
    if sock.family == socket.AF_INET:
        return "127.0.0.1"
    try:
        v6_only = sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
    except OSError:
        v6_only = 1
    return "::1" if v6_only else "::ffff:127.0.0.1"


def _bind_loopback(self, address):
    family = self.family
    if family in _ANYWHERE and isinstance(address, tuple) and address and address[0] in _ANYWHERE[family]:
        address = (_loopback(self), *address[1:])
    return _bind(self, address)


_bind_loopback.loopback_guard = True
if not getattr(_bind, "loopback_guard", False):  # run twice in one process (a warm child's spare): once is enough
    socket.socket.bind = _bind_loopback


def _run_the_next_one():
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


try:
    _run_the_next_one()
except Exception:  # as Python's own site does with a failing sitecustomize: carry on
    pass
