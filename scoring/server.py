"""``python -m scoring [--db D] serve``: a resident process that runs the command line's commands.

A command in a process of its own spends ~0.5 s importing pandas, numpy, pyarrow and DuckDB before
it does anything. The server pays that once: it imports them at start, then listens on a Unix
domain socket next to the database (``<database>.sock``) and runs, one request at a time, the
commands that ``python -m scoring`` (:mod:`scoring.__main__`) forwards to it while that socket
exists. Each request is ``scoring.cli.main(argv)`` in this process, with

- the client's working directory, umask, terminal size and ``KAOPING_*`` environment variables
  (``KAOPING_DB``, ``KAOPING_TODAY``, …: the server's own ``KAOPING_*`` are hidden for the request);
  the process's directory, umask and environment are restored afterwards, so the day a demo
  database makes "today" (``periods.live_on_recorded_day``) never leaks into the next request;
- its standard output and error streamed back byte for byte, then the exit code; a client that
  goes away (``ranking | head``) is to the command a broken pipe, as in a process of its own.

The database is opened and closed by each command (``with Store(...)``), as in a process of its
own: while the server is idle the app or another command line can open the file (DuckDB lets one
process at a time open a file for writing). Requests are served one after the other (one writer;
the working directory is the process's). Caches at module level are keyed by content (parsed
schemes, column letters) and stay correct from one request to the next.

The client runs the command in its own process, exactly as without a server, when there is no
socket, the socket is not its own user's, the connection fails, the server refuses the request
(a different checkout or interpreter; or the package's source files changed since the server
started: it then replaces itself by a fresh process with the new code, keeping its socket), the
command asks for a password (``user add``, ``user reset-password``: stdin and the
terminal stay with the client), or for ``--help``. Interrupting a client (Ctrl-C) does not
interrupt a command the server has already started: it runs to its end.

Security: the server runs commands with the privileges of the user who started it, as the office
(as the command line does). Only that same OS user may use it: the socket is created with mode
0600 (bound under umask 0177, then linked into place atomically), and the server checks every
connection's peer credentials (``SO_PEERCRED``) and refuses any other uid; the client checks that
the socket file belongs to its own uid and that the peer runs as its uid before it sends anything.
Keep the database (and so the socket) in a directory only its user can write. A stale socket (its
server killed) is detected by a refused connection and replaced; the server removes its socket on
exit, SIGTERM, SIGINT or SIGHUP (a signal during a command stops the server once the command ends;
a second one interrupts the command).
"""
from __future__ import annotations

import os
import stat
import sys

from .__main__ import (ACCEPTED, DEFAULT_DB, ERR, EXIT, GO, OUT, PROTOCOL, REFUSED, SUFFIX,  # noqa: F401
                       at_path, fingerprint, frame, own_socket, pack, peer_uid, socket_path, unpack)

MAX_REQUEST = 4 << 20


# -- the server ----------------------------------------------------------------------------------
PRELOAD = ("numpy", "pandas", "pyarrow", "duckdb", "yaml",
           ".store", ".periods", ".readers", ".schemes", ".rules", ".engine", ".ranking", ".views",
           ".ingest", ".batches", ".exports", ".units", ".adjustments", ".accounts", ".audit", ".lifecycle",
           ".snapshots", ".objections", ".problems", ".analytics", ".annual", ".cli_annual", ".yearbook",
           ".bulletin", ".annual_bulletin", ".cli")


_FD_ENV = "_KAOPING_SERVER_FD"     # fd:dev:ino of the listening socket handed over by a reload


class _Stop(Exception):
    pass


class _Frames:
    """Where a request's stream goes: to the client as frames of one kind; nowhere once the request
    has ended (a buffer left over after a broken pipe must not reach the server's own streams)."""

    def __init__(self, conn, kind: bytes):
        self.conn, self.kind, self.done = conn, kind, False

    def write(self, b) -> int:
        data = bytes(b)
        if data and not self.done:
            try:
                self.conn.sendall(frame(self.kind, data))
            except (ConnectionResetError, BrokenPipeError, TimeoutError) as exc:
                raise BrokenPipeError(32, "Broken pipe") from exc
        return len(data)


def _stream(conn, kind: bytes, tty: bool, line_buffering: bool):
    import io

    class Raw(io.RawIOBase):
        def writable(self):
            return True

        def isatty(self):
            return tty

        def write(self, b):
            return sink.write(b)

    sink = _Frames(conn, kind)
    # as Python sets up sys.stdout/sys.stderr: block-buffered unless a terminal; stderr by line
    stream = io.TextIOWrapper(io.BufferedWriter(Raw(), io.DEFAULT_BUFFER_SIZE), encoding="utf-8",
                              errors="strict", line_buffering=line_buffering or tty)
    return stream, sink


class Server:
    def __init__(self, db: str | None, log=None):
        self.path = socket_path(db)
        if self.path is None:
            raise SystemExit("错误:内存数据库(:memory:)不能由服务进程提供")
        self.log = log or sys.stderr
        self.fingerprint = fingerprint()
        self.busy = False
        self.stop_requested = False
        self.reload_requested = False
        self.listener = None
        self.ino = None
        self.home = os.getcwd()

    # -- start and stop ------------------------------------------------------------------------
    def preload(self) -> None:
        import importlib

        for name in PRELOAD:
            try:
                importlib.import_module(name, "scoring")
            except Exception as exc:  # a missing optional library: the command that needs it will say so
                print(f"预载 {name} 失败:{exc}", file=self.log)

    def adopt(self) -> bool:
        """Take over the listening socket of the process this one replaced (:meth:`reload`)."""
        import socket

        spec = os.environ.pop(_FD_ENV, None)
        if not spec:
            return False
        fd, dev, ino = (int(x) for x in spec.split(":"))
        sock = socket.socket(fileno=fd)
        if _inode(self.path) != (dev, ino) or sock.family != socket.AF_UNIX:
            sock.close()
            return False
        os.set_inheritable(fd, False)
        self.listener, self.ino = sock, (dev, ino)
        return True

    def reload(self) -> None:
        """Replace this process by a fresh one (the program files changed), keeping the socket: clients
        that connect meanwhile wait in its queue. Returns only if that cannot be done."""
        if "serve" not in getattr(sys, "orig_argv", ()):
            return
        fd = self.listener.fileno()
        os.set_inheritable(fd, True)
        os.environ[_FD_ENV] = f"{fd}:{self.ino[0]}:{self.ino[1]}"
        os.chdir(self.home)
        for stream in (sys.stdout, sys.stderr, self.log):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        try:
            os.execv(sys.executable, sys.orig_argv)
        except OSError:
            del os.environ[_FD_ENV]

    def check_place(self) -> None:
        """Refuse to start beside a live server or over a file that is not a socket; a stale socket
        (its server is gone: the connection is refused) is removed."""
        path = self.path
        if os.path.lexists(path):
            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                raise SystemExit(f"错误:{path} 已存在且不是服务套接字,请检查后删除")
            if self._alive(path):
                raise SystemExit(f"错误:该数据库的服务已在运行({path})")
            _unlink(path)

    def listen(self) -> None:
        """Bind a fresh socket under a temporary name (mode 0600) and link it into place atomically."""
        import socket

        path = self.path
        self.check_place()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        _unlink(tmp)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            at_path(sock, "bind", tmp)
        finally:
            os.umask(old)
        os.chmod(tmp, 0o600)
        sock.listen(16)
        try:
            os.link(tmp, path)                              # fails if another server just took the place
        except FileExistsError:
            sock.close()
            _unlink(tmp)
            raise SystemExit(f"错误:该数据库的服务已在运行({path})") from None
        finally:
            _unlink(tmp)
        self.listener = sock
        self.ino = _inode(path)

    @staticmethod
    def _alive(path: str) -> bool:
        import socket

        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(2)
        try:
            at_path(probe, "connect", path)
            return True
        except OSError:
            return False
        finally:
            probe.close()

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
            if self.ino is not None and _inode(self.path) == self.ino:   # ours, not a successor's
                _unlink(self.path)

    def _signal(self, signum, _frame) -> None:
        if self.busy and not self.stop_requested:
            self.stop_requested = True                      # after this command
            return
        if self.busy:
            raise KeyboardInterrupt                        # a second signal interrupts the command
        raise _Stop

    # -- the loop ------------------------------------------------------------------------------
    def run(self, ready=None) -> int:
        import signal
        import socket

        handlers = {s: signal.signal(s, self._signal) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
                    if signal.getsignal(s) is not signal.SIG_IGN}      # `nohup … serve` ignores SIGHUP: keep that
        try:
            if self.listener is None:
                self.listen()
            print(f"Kaoping 服务已就绪:{self.path}(Ctrl-C 或 SIGTERM 停止)", file=self.log, flush=True)
            if ready:
                ready()
            self.listener.settimeout(1.0)
            while not (self.stop_requested or self.reload_requested):
                try:
                    conn, _ = self.listener.accept()
                except socket.timeout:
                    if _inode(self.path) != self.ino:
                        print("服务套接字已被删除或替换,服务退出", file=self.log, flush=True)
                        break
                    continue
                with conn:
                    self.handle(conn)
        except _Stop:
            pass
        finally:
            for s, h in handlers.items():
                signal.signal(s, h)
            if self.reload_requested and not self.stop_requested:
                print("程序文件已更新:服务重新载入", file=self.log, flush=True)
                self.reload()                               # returns only if it could not
            self.close()
        print("Kaoping 服务已停止", file=self.log, flush=True)
        return 0

    def handle(self, conn) -> None:
        import time

        conn.settimeout(10)
        try:
            if peer_uid(conn) != os.getuid():
                conn.sendall(frame(REFUSED, "只接受同一用户的请求".encode()))
                return
            items = unpack(_read_request(conn))
            if len(items) < 8 or items[0] != PROTOCOL or items[1] != self.fingerprint:
                if len(items) > 1 and items[0] == PROTOCOL and fingerprint() != self.fingerprint:
                    self.reload_requested = True            # this process's code is stale: reload it
                conn.sendall(frame(REFUSED, b"reload" if self.reload_requested else b"version"))
                return
            cwd, umask, cols, lines, flags, argc = (items[2], int(items[3]), items[4].decode(), items[5].decode(),
                                                    items[6].decode(), int(items[7]))
            argv = [os.fsdecode(a) for a in items[8:8 + argc]]
            env = dict(os.fsdecode(kv).split("=", 1) for kv in items[8 + argc:])
            env = {k: v for k, v in env.items() if k.startswith("KAOPING_")}
        except (OSError, ValueError):
            return
        try:
            os.chdir(cwd)
        except OSError:
            try:
                conn.sendall(frame(REFUSED, b"cwd"))
            except OSError:
                pass
            return
        self.busy = True
        t0, code = time.perf_counter(), None
        try:
            try:     # offer, and run only once the client has answered GO (else it runs the command itself)
                conn.sendall(frame(ACCEPTED))
                if _recv_exact(conn, 1) != GO:
                    return
            except (OSError, ValueError):
                return
            conn.settimeout(None)
            code = self.execute(conn, argv, env, umask, cols, lines, flags)
            try:
                conn.sendall(frame(EXIT, str(code).encode()))
            except OSError:
                pass
        finally:
            os.chdir(self.home)
            self.busy = False
        print(f"{time.strftime('%H:%M:%S')} {_command(argv)} → {code}"
              f"({time.perf_counter() - t0:.2f} 秒)", file=self.log, flush=True)
        import gc

        gc.collect()     # between requests, not in one

    def execute(self, conn, argv: list[str], env: dict, umask: int, cols: str, lines: str, flags: str) -> int:
        """``scoring.cli.main(argv)`` as a process of its own would run it; returns the exit code."""
        import io
        import warnings

        from . import cli

        saved_env = dict(os.environ)
        for key in [k for k in os.environ if k.startswith("KAOPING_")]:
            del os.environ[key]
        os.environ.update(env)
        os.environ["COLUMNS"], os.environ["LINES"] = cols, lines   # argparse wraps usage at the client's width
        old_umask = os.umask(umask)
        saved = sys.stdin, sys.stdout, sys.stderr
        out, out_sink = _stream(conn, OUT, "o" in flags, False)
        err, err_sink = _stream(conn, ERR, "e" in flags, True)
        sys.stdin, sys.stdout, sys.stderr = io.StringIO(), out, err
        try:
            with warnings.catch_warnings():   # fresh "once" registries: a warning shows in every request
                try:
                    code = cli.main(argv)
                except SystemExit as exc:
                    code = exc.code
                except BrokenPipeError:
                    code = 0
                except BaseException as exc:   # as Python reports an uncaught exception (to sys.stderr),
                    try:                       # from cli.main down (a process of its own shows runpy above)
                        sys.excepthook(type(exc), exc, exc.__traceback__.tb_next)
                    except (BrokenPipeError, ValueError):
                        pass
                    code = 130 if isinstance(exc, KeyboardInterrupt) else 1
                if code is None:
                    code = 0
                elif not isinstance(code, int):
                    try:
                        print(code, file=err)
                    except (BrokenPipeError, ValueError):
                        pass
                    code = 1
                for stream in (out, err):     # as Python flushes at exit
                    try:
                        stream.flush()
                    except (BrokenPipeError, ValueError):
                        pass
        finally:
            out_sink.done = err_sink.done = True
            sys.stdin, sys.stdout, sys.stderr = saved
            os.umask(old_umask)
            for key in [k for k in os.environ if k not in saved_env]:
                del os.environ[key]
            for key, value in saved_env.items():
                if os.environ.get(key) != value:
                    os.environ[key] = value
        return code


def _command(argv: list[str]) -> str:
    """The command's name for the log (not its arguments)."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 1 if "=" in argv[i] or argv[i] not in ("--db", "--as") else 2
    return argv[i] if i < len(argv) else "(无命令)"


def _read_request(conn) -> bytes:
    head = _recv_exact(conn, 4)
    size = int.from_bytes(head, "big")
    if size > MAX_REQUEST:
        raise ValueError("request too large")
    return _recv_exact(conn, size)


def _recv_exact(conn, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(min(n - len(buf), 1 << 16))
        if not chunk:
            raise ValueError("short request")
        buf += chunk
    return bytes(buf)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _inode(path: str):
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def serve(db: str | None) -> int:
    """The ``serve`` command: preload, listen, serve until a signal."""
    import time

    server = Server(db)
    if not server.adopt():
        server.check_place()              # before the imports: a second server fails at once
    t0 = time.perf_counter()
    server.preload()
    import gc

    gc.collect()
    gc.freeze()                           # the imported modules' objects: never scanned by a collection again
    print(f"已载入计算模块({time.perf_counter() - t0:.2f} 秒)", file=server.log, flush=True)
    try:
        return server.run()
    finally:
        gc.unfreeze()                     # let the interpreter's shutdown free them as usual
        gc.collect()
