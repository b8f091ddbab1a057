"""A warm Python for the local runner: `python ARGS` as a fork of a process that has imported the usual libraries.

A check starts the learner's app a dozen times, and most of each start is importing Flask, SQLAlchemy, redis
and requests. This server imports them once; each `python ARGS` is then a fork of it that runs ARGS as Python
would (a script, -m module or -c code, with the same sys.argv and sys.path), with its own environment,
working directory, process group, memory cap and output. Run by the local runner as
`python -u -P preload.py SOCKET`; it serves requests on a Unix socket until it is stopped.

A request: a JSON line {"args", "cwd", "env", "isolate"} with the write end of the output pipe attached
(SCM_RIGHTS). The answers on the same connection: "pid N isolated|shared", then "exit STATUS" when the child
has exited (STATUS as os.waitpid gives it).

A child that execs this same Python again (`release.py run` ends in `os.execve(sys.executable, [..., "-m",
"flask", ...], env)`) would start cold. So each child that runs a script or module first forks a spare of
itself, untouched by the app's code; the exec is handed to the spare (arguments, environment, working
directory, umask, the descriptors an exec keeps, the signals it ignores), which runs it as a fresh process
would, while the child stands in for it: it exits as the spare exits (the same code, or killed by the same
signal), and passes on the signals that do not reach the spare through their process group. Anything the
spare cannot reproduce (other interpreter options, start-up variables, threads, a folder on the new path
that shadows a preloaded library) takes the real exec.

This module must stay importable and runnable without factorlab installed (it runs by path).
"""

import ctypes
import fcntl
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
    gc.disable()  # imports make objects by the hundred thousand and free few: collecting meanwhile is wasted time
    for name in PRELOAD:
        try:
            __import__(name)
        except Exception:  # a library the venv does not have: apps that need it import it themselves
            pass
    # What the imports made lives as long as the server: kept out of the collector's sight, a fork's
    # collections neither walk it nor copy the pages its reference counts sit on. (No collection first: it
    # would take a tenth of the imports' time to free a few hundred objects.)
    gc.freeze()
    gc.enable()


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


# -- an exec of this same Python, handed to a spare ------------------------------------------------------

OPTIONS = ("-P", "-u", "-B")
# factorlab/guard, which the runners put on every app's PYTHONPATH: a fresh Python runs its sitecustomize (binds to
# every interface made loopback ones), a warm child, whose site has run long ago, runs it in start(). It is not
# counted as a folder that shadows a preloaded module: the sitecustomize it holds is meant to.
GUARD = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "guard")
START_UP_KEPT = {"PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONPATH"}  # what a spare reproduces
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
             signal.SIGWINCH, signal.SIGALRM)


def without_options(args: list) -> list:
    """ARGS from the first word after the options emulate knows."""
    rest = list(args)
    while rest and rest[0] in OPTIONS:
        rest = rest[1:]
    return rest


def runs_code(args: list) -> bool:
    """Do ARGS (after the options emulate knows) name a script, -m module or -c code?"""
    rest = without_options(args)
    if not rest:
        return False
    if rest[0] in ("-m", "-c"):
        return len(rest) >= 2
    return not rest[0].startswith("-")


def _top_level_names(folder: str) -> set:
    try:
        entries = os.listdir(folder or ".")
    except OSError:
        return set()
    return {name[:-3] if name.endswith(".py") else name for name in entries}


def first_on_path(args: list, env: dict) -> list:
    """The folders a fresh `python ARGS` puts before the standard library: the script's folder (or the working
    directory for -m and -c) unless -P, then PYTHONPATH."""
    rest = without_options(args)
    safe = "-P" in args[:len(args) - len(rest)]
    here = [] if safe else [os.getcwd() if rest[0] in ("-m", "-c") else os.path.dirname(os.path.abspath(rest[0]))]
    return here + [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep)
                   if entry and os.path.abspath(entry) != GUARD]


def shadows_preloaded(folders: list) -> bool:
    """Would a folder put first on sys.path hide a module this server has imported (its own flask, say)?"""
    loaded = {name.partition(".")[0] for name in sys.modules}
    return any(_top_level_names(folder) & loaded for folder in folders)


class Spare:
    """A fork of a child taken before the app's code runs, waiting to run the child's exec of this Python."""

    def __init__(self) -> None:
        self.owner = os.getpid()
        here, there = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            here.close()
            self._wait(there)
        there.close()
        self.pid, self.conn = pid, here

    # -- in the spare --

    def _wait(self, conn: socket.socket) -> None:
        code = 1
        try:
            _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != self.owner:
                os._exit(1)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)  # the child's descriptors as they are at the exec come with the request
            os.close(devnull)
            message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 250)
            if not message:
                os._exit(0)  # the child ended without an exec
            request = json.loads(message.decode())
            conn.close()
            self._place(fds, request["fds"])
            for signum in request["ignored"]:
                signal.signal(signum, signal.SIG_IGN)
            os.umask(request["umask"])
            os.chdir(request["cwd"])
            code = start(request["args"], request["env"], spare=False)
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            os._exit(code)

    @staticmethod
    def _place(received: list, numbers: list) -> None:
        """Put the descriptors received at the numbers they had in the child, and close every other one."""
        high = max([*received, *numbers, 2]) + 1
        moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, high) for fd in received]  # out of the way of the numbers
        for fd in received:
            os.close(fd)
        for fd, number in zip(moved, numbers):
            os.dup2(fd, number)
        for name in os.listdir("/proc/self/fd"):
            if int(name) not in numbers:
                try:
                    os.close(int(name))
                except OSError:
                    pass  # the listing's own descriptor

    # -- in the child --

    def can_take(self, path, argv: list, env) -> bool:
        """Can the spare run `exec path argv env` as a fresh process of this Python would?"""
        env = dict(os.environ if env is None else env)
        if os.getpid() != self.owner or not isinstance(path, (str, bytes)) or len(argv) < 2:
            return False
        if os.path.abspath(os.fsdecode(path)) != os.path.abspath(sys.executable):
            return False
        threading = sys.modules.get("threading")
        if threading is not None and threading.active_count() > 1:
            return False
        return not starts_cold([os.fsdecode(a) for a in argv[1:]], env)

    def take(self, argv: list, env) -> None:
        """Hand the exec to the spare, then stand in for it until it ends; returns only when the spare could not
        be told (too many descriptors for one message, say), with nothing changed: the real exec follows."""
        env = {os.fsdecode(k): os.fsdecode(v) for k, v in (os.environ if env is None else env).items()}
        umask = os.umask(0)
        os.umask(umask)
        fds = sorted(int(name) for name in os.listdir("/proc/self/fd"))
        kept = [fd for fd in fds if fd != self.conn.fileno() and _inheritable(fd)]
        ignored = [int(s) for s in signal.valid_signals() if _ignored(s)]
        request = {"args": [os.fsdecode(a) for a in argv[1:]], "env": env, "cwd": os.getcwd(), "umask": umask,
                   "fds": kept, "ignored": ignored}
        try:
            socket.send_fds(self.conn, [json.dumps(request).encode()], kept)
        except OSError:
            return
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in fds:  # the exec'd process holds them now (an exec closes the rest)
            if fd not in (devnull, self.conn.fileno()):
                try:
                    os.dup2(devnull, fd) if fd <= 2 else os.close(fd)
                except OSError:
                    pass
        for signum in FORWARDED:
            signal.signal(signum, self._forward)
        while True:
            try:
                _, status = os.waitpid(self.pid, 0)
                break
            except ChildProcessError:
                os._exit(1)
        code = os.waitstatus_to_exitcode(status)
        if code < 0:
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        os._exit(code if code >= 0 else 128 - code)

    def _forward(self, signum, frame) -> None:
        """A signal for the child that its process group did not also bring to the spare."""
        try:
            if os.getpgid(self.pid) != os.getpgid(0):
                os.kill(self.pid, signum)
        except OSError:
            pass

    def install(self) -> None:
        """Route this child's execs of this Python (os.execv, os.execve and the exec* built on them) to the spare."""
        real_execv, real_execve = os.execv, os.execve

        def execv(path, argv):
            if self.can_take(path, list(argv), None):
                self.take(list(argv), None)
            return real_execv(path, argv)

        def execve(path, argv, env):
            if self.can_take(path, list(argv), env):
                self.take(list(argv), env)
            return real_execve(path, argv, env)

        os.execv, os.execve = execv, execve


def starts_cold(args: list, env: dict) -> bool:
    """Must `python ARGS` with env start as a fresh interpreter? When ARGS hold options emulate does not know,
    when env sets start-up variables it does not reproduce, or when the path puts a folder first that holds a
    module this server has imported (the app's own json.py, say)."""
    if not runs_code(args) or any(k.startswith("PYTHON") and k not in START_UP_KEPT for k in env):
        return True
    return shadows_preloaded(first_on_path(args, env))


def start(args: list, env: dict, spare: bool) -> int:
    """Become `python ARGS` with env in this process (exec'd for real when it must start cold); its exit code.
    spare: hand its execs of this same Python to a spare taken now (not for -c code, the checks' own)."""
    os.environ.clear()
    os.environ.update(env)
    if starts_cold(args, env):
        os.execv(sys.executable, [sys.executable, *args])
    sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
    entries = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
    sys.path[0:0] = entries
    if any(os.path.abspath(entry) == GUARD for entry in entries):
        runpy.run_path(os.path.join(GUARD, "sitecustomize.py"), run_name="_factorlab_guard")
    if spare and without_options(args)[0] != "-c":
        Spare().install()
    return emulate(args)


def _ignored(signum) -> bool:
    try:
        return signum not in (signal.SIGKILL, signal.SIGSTOP) and signal.getsignal(signum) == signal.SIG_IGN
    except (ValueError, OSError):
        return False


def _inheritable(fd: int) -> bool:
    try:
        return os.get_inheritable(fd)
    except OSError:
        return False


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
        code = start(request["args"], request["env"], spare=True)
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
