"""A warm Python for the local runner: `python ARGS` as a fork of a process that has imported the usual libraries.

A check starts the learner's app a dozen times, and most of each start is importing Flask, SQLAlchemy, redis
and requests. This server imports them once; each `python ARGS` is then a fork of it that runs ARGS as Python
would (a script, -m module or -c code, with the same sys.argv and sys.path), with its own environment,
working directory, process group, memory cap and output. Run by the local runner as
`python -u -P preload.py SOCKET`; it serves requests on a Unix socket until it is stopped.

A request: a JSON line {"args", "cwd", "env", "isolate"} with the write end of the output pipe attached
(SCM_RIGHTS). The answers on the same connection: "pid N isolated|shared", then "exit STATUS" when the child
has exited (STATUS as os.waitpid gives it).

This module must stay importable and runnable without factorlab installed (it runs by path).
"""

import ctypes
import gc
import json
import os
import resource
import runpy
import selectors
import signal
import socket
import sys
import traceback
import types

PRELOAD = ("flask", "werkzeug.serving", "jinja2", "click", "itsdangerous", "markupsafe", "sqlalchemy",
           "sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.postgresql.psycopg2", "psycopg2", "redis",
           "requests", "urllib3", "logging.handlers", "email.utils", "http.server", "sqlite3", "json", "runpy")
MEMORY_LIMIT = 1024 ** 3
PR_SET_PDEATHSIG = 1
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 1 << 18
TEMP_FOLDERS = ((b"/tmp", b"size=64m"), (b"/var/tmp", b"size=64m"), (b"/dev/shm", b"size=16m"))
# As in runners/isolation.py (keep the two in step): the folders where a machine keeps its data, each an overlay
# of its own per instance, /var last; LAYERS holds their upper layers until the private /var/tmp covers it.
DATA_FOLDERS = ("/run", "/srv", "/opt", "/var")
LAYERS = "/var/tmp"


def preload() -> None:
    for name in PRELOAD:
        try:
            __import__(name)
        except Exception:  # a library the venv does not have: apps that need it import it themselves
            pass
    # What the imports made lives as long as the server: kept out of the collector's sight, a fork's
    # collections neither walk it nor copy the pages its reference counts sit on.
    gc.collect()
    gc.freeze()


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _write(path: str, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def data_folders(paths: list) -> list:
    """The DATA_FOLDERS an instance gets a copy of its own: those that exist as real folders and hold none of
    the paths it must see as they are."""
    return [folder for folder in DATA_FOLDERS if os.path.isdir(folder) and not os.path.islink(folder)
            and not any(_under(path, folder) for path in paths)]


def kept_in_temp(paths: list) -> list:
    """The outermost of paths that lie in a temporary folder: bound back into the instance's empty copy of it."""
    inside = sorted(p for p in paths if any(_under(p, folder.decode()) for folder, _ in TEMP_FOLDERS))
    kept: list = []
    for path in inside:
        if not any(_under(path, top) for top in kept):
            kept.append(path)
    return kept


def overlay(libc, folders: list) -> None:
    """Give each folder an overlay of its own, its writes on a tmpfs at LAYERS; any that fails stays as it is."""
    if not folders or libc.mount(b"tmpfs", LAYERS.encode(), b"tmpfs", 0, b"size=64m") != 0:
        return
    for folder in folders:
        layer = f"{LAYERS}/.layers/{folder.strip('/')}"
        try:
            os.makedirs(f"{layer}/upper")
            os.makedirs(f"{layer}/work")
        except OSError:
            continue
        options = f"lowerdir={folder},upperdir={layer}/upper,workdir={layer}/work".encode()
        libc.mount(b"overlay", folder.encode(), b"overlay", 0, options)


def isolate(cwd: str, keep: list) -> bool:
    """In the child: a mount namespace (and, not as root, a user namespace) with empty /tmp, /var/tmp and
    /dev/shm, and copies of its own of the data folders; what it must see as it is (keep: its folder, the
    Python, factorlab) bound back where it lies in a temporary folder. False when this machine does not allow it."""
    paths = sorted({os.path.realpath(p) for p in [cwd, *keep] if os.path.isdir(p)})
    libc = _libc()
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | (0 if uid == 0 else CLONE_NEWUSER)
    if libc.unshare(flags) != 0:
        return False
    try:
        if uid != 0:
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"0 {uid} 1")
            _write("/proc/self/gid_map", f"0 {gid} 1")
    except OSError:
        return False
    if libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return False
    opened = [(path, os.open(path, os.O_PATH)) for path in kept_in_temp(paths)]  # before they are covered
    try:
        overlay(libc, data_folders(paths))
        for target, size in TEMP_FOLDERS:
            if libc.mount(b"tmpfs", target, b"tmpfs", 0, size) != 0 and target != b"/dev/shm":
                return False
        for path, fd in opened:
            os.makedirs(path, exist_ok=True)
            if libc.mount(f"/proc/self/fd/{fd}".encode(), path.encode(), None, MS_BIND | MS_REC, None) != 0:
                return False
    finally:
        for _, fd in opened:
            os.close(fd)
    return True


def emulate(args: list[str]) -> int:
    """Run `python ARGS` in this process, as the interpreter would: a script, -m module or -c code."""
    safe_path = False
    while args and args[0] in ("-P", "-u", "-B"):
        safe_path = safe_path or args[0] == "-P"
        args = args[1:]
    try:
        if args and args[0] == "-c":
            sys.argv = ["-c", *args[2:]]
            if not safe_path:
                sys.path.insert(0, "")
            main = types.ModuleType("__main__")
            sys.modules["__main__"] = main
            exec(compile(args[1], "<string>", "exec"), main.__dict__)
        elif args and args[0] == "-m":
            sys.argv = [args[1], *args[2:]]
            if not safe_path:
                sys.path.insert(0, os.getcwd())
            runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(args)
            if not safe_path:
                sys.path.insert(0, os.path.dirname(os.path.abspath(args[0])))
            runpy.run_path(args[0], run_name="__main__")
        return 0
    except SystemExit as exc:
        code = exc.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1


def child(request: dict, out: int, conn: socket.socket, others: list) -> None:
    """In the forked child: become the requested `python ARGS` process, then exit with its code."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for other in others:  # the server's sockets and pipes: none of the app's business
            try:
                os.close(other if isinstance(other, int) else other.detach())
            except OSError:
                pass
        os.setpgrp()
        try:
            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        except (ValueError, OSError):
            pass
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(signum, signal.SIG_DFL)
        isolated = isolate(request["cwd"], request.get("keep", [])) if request.get("isolate") else False
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # entering a user namespace clears it: arm it again
        conn.sendall(f"pid {os.getpid()} {'isolated' if isolated else 'shared'}\n".encode())
        conn.close()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        os.close(devnull)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        code = emulate(request["args"])
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def serve(path: str) -> None:
    preload()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    wakeup_read, wakeup_write = os.pipe()
    os.set_blocking(wakeup_write, False)
    signal.set_wakeup_fd(wakeup_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    waiting: dict[int, socket.socket] = {}
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wakeup_read, selectors.EVENT_READ, "child")
    print("preload: ready", flush=True)
    while True:
        for key, _ in selector.select():
            if key.data == "accept":
                conn, _ = listener.accept()
                try:
                    message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 1)
                    request = json.loads(message.decode())
                except (OSError, ValueError):
                    conn.close()
                    continue
                pid = os.fork()
                if pid == 0:
                    child(request, fds[0], conn, [listener, wakeup_read, wakeup_write, *waiting.values(),
                                                   selector.fileno()])
                os.close(fds[0])
                waiting[pid] = conn
            else:
                os.read(wakeup_read, 4096)
            while waiting:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                conn = waiting.pop(pid, None)
                if conn is not None:
                    try:
                        conn.sendall(f"exit {status}\n".encode())
                    except OSError:
                        pass
                    conn.close()


if __name__ == "__main__":
    serve(sys.argv[1])
