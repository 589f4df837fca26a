"""``python -m scoring …``: run a command, through the resident server when one serves the database.

Before anything heavy is imported: if ``<database>.sock`` exists (the database as ``--db``, else
``KAOPING_DB``, else the default names it) and belongs to this user, the command line, the working
directory, the umask, the terminal size and the ``KAOPING_*`` environment variables go to the
server (``python -m scoring serve``, :mod:`scoring.server`), which runs the command and streams back
its output byte for byte and its exit code. Otherwise (no server, a refused or failed connection,
``--help``, a password prompt, ``KAOPING_NO_SERVER=1``) the command runs in this process, exactly
as without a server.

This module also holds what the client and the server share (the socket's place, the frames, the
code's fingerprint): the client's path imports nothing but ``os``, ``sys``, ``stat`` and
``_socket`` (every module a command imports is compiled again when no ``.pyc`` is written).
"""
import os
import stat
import sys

PROTOCOL = b"kaoping-serve-1"
SUFFIX = ".sock"
DEFAULT_DB = "data/kaoping.duckdb"   # = scoring.store.DEFAULT_DB (tested): the client does not import the store
_SHORT = 100                         # sun_path holds 107 bytes: longer paths are reached from their directory
WAIT_S = 30.0                        # for a busy server to take the request, else run here
LOCAL_COMMANDS = {"serve"}           # and `user add` / `user reset-password`: stdin and the tty are the client's
_TOP_OPTIONS = ("--db", "--as")

# frames: one byte of kind, four bytes of length (big-endian), the payload
OUT, ERR, EXIT, ACCEPTED, REFUSED = b"1", b"2", b"x", b"a", b"r"
GO = b"g"      # the client's answer to ACCEPTED: from then on the command is the server's to run, not the client's


# -- shared by the client and the server (scoring/server.py) ---------------------------------------
def socket_path(db):
    """Where the server for the database ``db`` (``--db``; else ``KAOPING_DB``; else the default)
    listens, resolved as :class:`scoring.store.Store` resolves it; None for ``:memory:``."""
    path = str(db or os.environ.get("KAOPING_DB") or DEFAULT_DB)
    if path == ":memory:":
        return None
    return os.path.abspath(path) + SUFFIX


def fingerprint() -> bytes:
    """This checkout, its source files and the interpreter: a server runs a request only if they
    are its own (a changed file: the server's code is stale)."""
    pkg = os.path.dirname(os.path.abspath(__file__))
    parts = [PROTOCOL.decode(), sys.prefix, sys.version, pkg]
    with os.scandir(pkg) as it:
        for e in sorted(it, key=lambda e: e.name):
            if e.name.endswith(".py"):
                st = e.stat()
                parts.append(f"{e.name}:{st.st_mtime_ns}:{st.st_size}")
    return "\n".join(parts).encode("utf-8", "surrogateescape")


def pack(items) -> bytes:
    return len(items).to_bytes(4, "big") + b"".join(len(b).to_bytes(4, "big") + b for b in items)


def unpack(data: bytes) -> list:
    n, pos, out = int.from_bytes(data[:4], "big"), 4, []
    for _ in range(n):
        size = int.from_bytes(data[pos:pos + 4], "big")
        out.append(data[pos + 4:pos + 4 + size])
        pos += 4 + size
        if pos > len(data):
            raise ValueError("truncated request")
    return out


def frame(kind: bytes, payload: bytes = b"") -> bytes:
    return kind + len(payload).to_bytes(4, "big") + payload


def peer_uid(sock) -> int:
    """The uid of the process at the other end of a Unix socket (SO_PEERCRED: pid, uid, gid)."""
    import _socket

    return int.from_bytes(sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)[4:8], sys.byteorder)


def at_path(sock, method: str, path: str) -> None:
    """``sock.connect(path)`` / ``sock.bind(path)``, from the path's directory when it is too long."""
    raw = os.fsencode(path)
    if len(raw) <= _SHORT:
        getattr(sock, method)(raw)
        return
    here = os.open(".", os.O_RDONLY)
    try:
        os.chdir(os.path.dirname(raw))
        getattr(sock, method)(os.path.basename(raw))
    finally:
        os.fchdir(here)
        os.close(here)


def own_socket(path: str) -> bool:
    """The path is a socket that belongs to this user."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISSOCK(st.st_mode) and st.st_uid == os.getuid()


# -- the client ------------------------------------------------------------------------------------
def _target(argv):
    """The socket of the database ``argv`` names, or None when the command must run here."""
    db, i = None, 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in _TOP_OPTIONS and eq:
            i += 1
        elif arg in _TOP_OPTIONS and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            value, i = argv[i + 1], i + 2
        elif arg.startswith("-"):                  # --help, abbreviations, anything unusual: argparse decides here
            return None
        else:
            break
        if name == "--db":
            db = value
    else:
        return None                                # no command: help and exit 2, here
    command, rest = argv[i], argv[i + 1:]
    if command in LOCAL_COMMANDS or "-h" in rest or "--help" in rest:
        return None
    if command == "user" and ("add" in rest or "reset-password" in rest):
        return None
    return socket_path(db)


def _terminal_size():
    """What shutil.get_terminal_size() says in this process (argparse wraps usage messages by it)."""
    sizes = []
    for name in ("COLUMNS", "LINES"):
        try:
            sizes.append(int(os.environ[name]))
        except (KeyError, ValueError):
            sizes.append(0)
    if sizes[0] <= 0 or sizes[1] <= 0:
        try:
            size = os.get_terminal_size(sys.__stdout__.fileno())
        except (AttributeError, ValueError, OSError):
            size = os.terminal_size((80, 24))
        sizes = [sizes[0] if sizes[0] > 0 else size.columns, sizes[1] if sizes[1] > 0 else size.lines]
    return sizes


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _Frames:
    def __init__(self, sock):
        self.sock, self.buf = sock, bytearray()

    def _fill(self, n: int) -> None:
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 18)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def next(self):
        self._fill(5)
        size = int.from_bytes(self.buf[1:5], "big")
        self._fill(5 + size)
        kind, payload = bytes(self.buf[:1]), bytes(self.buf[5:5 + size])
        del self.buf[:5 + size]
        return kind, payload


def _served(argv):
    """The exit code of the command run by the server, or None when it must run here."""
    path = _target(argv)
    if path is None or not own_socket(path):
        return None
    import _socket      # not `socket`: its enums cost more than the rest of the client

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(WAIT_S)
        at_path(sock, "connect", path)
        if peer_uid(sock) != os.getuid():
            sock.close()
            return None
        umask = os.umask(0)
        os.umask(umask)
        cols, lines = _terminal_size()
        flags = ("o" if _isatty(sys.stdout) else "") + ("e" if _isatty(sys.stderr) else "")
        items = [PROTOCOL, fingerprint(), os.getcwdb(), str(umask).encode(), str(cols).encode(),
                 str(lines).encode(), flags.encode(), str(len(argv)).encode(), *map(os.fsencode, argv),
                 *(os.fsencode(f"{k}={v}") for k, v in os.environ.items() if k.startswith("KAOPING_"))]
        request = pack(items)
        sock.sendall(len(request).to_bytes(4, "big") + request)
        reader = _Frames(sock)
        kind, _ = reader.next()                      # a busy server takes it after the current request
        if kind != ACCEPTED:
            sock.close()
            return None
        sock.sendall(GO)                             # the command is now the server's to run
        sock.settimeout(None)
    except (OSError, EOFError, ValueError):         # no server after all (or no answer): run here
        sock.close()
        return None
    out, err = sys.stdout.buffer, sys.stderr.buffer
    try:
        while True:
            try:
                kind, payload = reader.next()
            except (OSError, EOFError):
                err.write("错误:考评服务进程意外中断,命令可能没有执行完,请检查结果后重试\n".encode())
                err.flush()
                return 1
            if kind == OUT:
                try:
                    out.write(payload)
                    out.flush()
                except BrokenPipeError:              # `ranking | head`: the reader has gone; the command
                    sock.close()                     # sees a broken pipe, as in a process of its own
                    _quiet_stdout()
                    return 0
            elif kind == ERR:
                try:
                    err.write(payload)
                    err.flush()
                except (BrokenPipeError, ValueError):
                    pass
            elif kind == EXIT:
                try:
                    return int(payload)
                except ValueError:
                    return 1
    except KeyboardInterrupt:                        # the server finishes the command it has started
        return 130
    finally:
        sock.close()


def _quiet_stdout() -> None:
    """Python's own flush of stdout at exit must not complain about the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def main() -> int:
    if os.environ.get("KAOPING_NO_SERVER") != "1":
        code = _served(sys.argv[1:])
        if code is not None:
            return code
    from .cli import main as cli_main

    return cli_main(serve=_serve)


def _serve(db) -> int:
    from .server import serve

    return serve(db)


if __name__ == "__main__":
    sys.exit(main())
