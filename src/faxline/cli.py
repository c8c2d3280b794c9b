"""Command line: `faxline serve | worker | provision | migrate | status | records | convert`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported lazily: `faxline convert` should start fast
    from faxline.config import Settings


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    """Environment (`FAXLINE_*`) first, overridden by the flags that were given."""
    from faxline.config import Settings

    overrides = {k: v for k, v in extra.items() if v is not None}
    if getattr(args, "data_dir", None) is not None:
        overrides["data_dir"] = args.data_dir
    return Settings(**overrides)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from faxline.api import redact
    from faxline.api.connection import LimitedHttpToolsProtocol
    from faxline.server import http_app

    if bool(args.tls_cert) != bool(args.tls_key):
        print("faxline: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    settings = _settings(
        args,
        host=args.host,
        port=args.port,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        sip_listen=args.sip_listen,
        smtp_listen=args.smtp_listen,
    )
    app = http_app(settings)
    protocol = LimitedHttpToolsProtocol.configure(
        header_timeout_s=settings.http_header_timeout_s,
        max_request_line=settings.http_max_request_line,
        max_header_bytes=settings.http_max_header_bytes,
        max_headers=settings.http_max_headers,
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
        log_level=args.log_level,
        access_log=args.access_log,
        # Live-update streams (the web fax center's Server-Sent Events) stay open while a
        # page is; a stop must not wait for every browser to leave.
        timeout_graceful_shutdown=5,
        http=protocol,
        timeout_keep_alive=int(max(1, settings.http_keep_alive_s)),
    )
    # uvicorn configured logging just now (in Config): filter what its handlers write.
    if settings.log_format == "json":
        from faxline.metrics import logs

        logs.configure("json", logging.getLevelName(args.log_level.upper()), redact.redact)
    redact.install()
    uvicorn.Server(config).run()
    return 0


def _provision(args: argparse.Namespace) -> int:
    from faxline.directory.provision import ProvisionError, apply, load
    from faxline.store.blobstores import blob_store_for
    from faxline.store.db import make_engine, migrate, session_factory

    settings = _settings(args)
    try:
        spec = load(args.file)
    except ProvisionError as e:
        print(f"faxline provision: {e}", file=sys.stderr)
        return 1
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.sqlalchemy_url)
    try:
        migrate(engine, settings.documents_dir)
        blobs = blob_store_for(engine, settings.data_dir)
        with session_factory(engine)() as session:
            try:
                with blobs.transaction(session) as writes:
                    report = apply(session, spec)
                    report.discard_documents(writes)
            except ProvisionError as e:
                print(f"faxline provision: {args.file}: {e}", file=sys.stderr)
                return 1
    finally:
        engine.dispose()
    summary = ", ".join(f"{n} {k}" for k, n in report.applied.items())
    print(f"provisioned {summary} from {args.file}")
    for line in report.lines():
        print(line)
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from faxline.store.db import import_documents, make_engine, migrate

    settings = _settings(args)
    engine = make_engine(settings.sqlalchemy_url)
    try:
        # The data directory is known here, so a migration that moves its files (0008_blobs
        # on PostgreSQL) does; a node whose files it did not see moves them afterwards.
        migrated = migrate(engine, settings.documents_dir)
        moved = import_documents(engine, settings.documents_dir)
    finally:
        engine.dispose()
    print(f"schema {'migrated' if migrated else 'up to date'}; {moved} documents moved in")
    return 0


def _worker(args: argparse.Namespace) -> int:
    from faxline.server import run_worker

    settings = _settings(args)
    if settings.log_format == "json":
        from faxline.api import redact
        from faxline.metrics import logs

        logs.configure("json", logging.INFO, redact.redact)
    listen = None
    if args.sip_listen != "off":
        host, _, port = args.sip_listen.rpartition(":")
        listen = (host.strip("[]"), int(port))
    run_worker(settings, listen)
    return 0


def _status(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import OperationalError

    from faxline.store import nodes
    from faxline.store.db import make_engine, migrate, session_factory

    settings = _settings(args)
    if settings.database_url is None and not (settings.data_dir / "faxline.sqlite3").exists():
        print(f"faxline status: no database in {settings.data_dir}", file=sys.stderr)
        return 1
    engine = make_engine(settings.sqlalchemy_url)
    try:
        migrate(engine)
        with session_factory(engine)() as session:
            status = nodes.cluster_status(session, stale_after_s=settings.heartbeat_s * 3)
    except OperationalError as e:
        print(f"faxline status: cannot read the database: {e.orig}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(nodes.render(status))
    return 0


def _records(args: argparse.Namespace) -> int:
    import datetime as dt

    from faxline.store import records
    from faxline.store.db import make_engine, migrate, session_factory

    since = None
    if args.since is not None:
        try:
            since = dt.datetime.fromisoformat(args.since.replace("Z", "+00:00"))
        except ValueError:
            print(f"faxline records: --since: not an ISO 8601 time: {args.since}", file=sys.stderr)
            return 2
        if since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)
    settings = _settings(args)
    engine = make_engine(settings.sqlalchemy_url)
    try:
        migrate(engine)
        with session_factory(engine)() as session:
            rows = records.export(session, since)
            write = records.write_csv if args.format == "csv" else records.write_json
            write(rows, sys.stdout)  # type: ignore[arg-type]
    finally:
        engine.dispose()
    return 0


def build_parser() -> argparse.ArgumentParser:
    from faxline.documents.command import add_convert_parser

    parser = argparse.ArgumentParser(prog="faxline", description="A self-hosted fax server.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP API and the dispatcher")
    serve.add_argument("--data-dir", type=Path, help="data directory (FAXLINE_DATA_DIR)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP port (default 8080)")
    serve.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate (PEM)")
    serve.add_argument("--tls-key", type=Path, help="private key of --tls-cert (PEM)")
    serve.add_argument(
        "--sip-listen",
        metavar="HOST:PORT",
        help="SIP address (FAXLINE_SIP_LISTEN; default 127.0.0.1:5060; 'off' for none)",
    )
    serve.add_argument(
        "--smtp-listen",
        metavar="HOST:PORT",
        help="SMTP address for faxes by email (FAXLINE_SMTP_LISTEN; default off)",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    serve.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True)
    serve.set_defaults(handler=_serve)

    provision = sub.add_parser("provision", help="create or update tenants and apps from JSON")
    provision.add_argument("--data-dir", type=Path, help="data directory (FAXLINE_DATA_DIR)")
    provision.add_argument("file", type=Path, help="provisioning file (JSON)")
    provision.set_defaults(handler=_provision)

    migrate = sub.add_parser(
        "migrate", help="bring the schema up to date; move the data directory's documents in"
    )
    migrate.add_argument("--data-dir", type=Path, help="data directory (FAXLINE_DATA_DIR)")
    migrate.set_defaults(handler=_migrate)

    worker = sub.add_parser("worker", help="run only the dispatcher (shares the database)")
    worker.add_argument("--data-dir", type=Path, help="data directory (FAXLINE_DATA_DIR)")
    worker.add_argument(
        "--sip-listen",
        metavar="HOST:PORT",
        default="127.0.0.1:0",
        help="SIP address for outbound calls (default 127.0.0.1, any port; 'off' for none)",
    )
    worker.set_defaults(handler=_worker)

    status = sub.add_parser(
        "status", help="the nodes sharing the database, their calls, and the queue"
    )
    status.add_argument("--data-dir", type=Path, help="data directory (FAXLINE_DATA_DIR)")
    status.set_defaults(handler=_status)

    recs = sub.add_parser("records", help="export call records (every call, in and out)")
    recs.add_argument("--data-dir", type=Path, help="data directory (FAXLINE_DATA_DIR)")
    recs.add_argument("--since", metavar="TIME", help="only calls started since (ISO 8601)")
    recs.add_argument("--format", choices=["csv", "json"], default="csv")
    recs.set_defaults(handler=_records)

    add_convert_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    from pydantic import ValidationError

    try:
        result: int = args.handler(args)
    except ValidationError as e:
        print(f"faxline: bad setting: {e}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
