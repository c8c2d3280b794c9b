"""Command line: `faxline serve | worker | provision | convert`."""

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
    )
    app = http_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
        log_level=args.log_level,
        access_log=args.access_log,
    )
    return 0


def _provision(args: argparse.Namespace) -> int:
    from faxline.directory.provision import ProvisionError, apply, load
    from faxline.store.db import make_engine, migrate, session_factory
    from faxline.store.files import FileStore

    settings = _settings(args)
    try:
        spec = load(args.file)
    except ProvisionError as e:
        print(f"faxline provision: {e}", file=sys.stderr)
        return 1
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.sqlalchemy_url)
    try:
        migrate(engine)
        with session_factory(engine)() as session:
            try:
                report = apply(session, spec)
                session.commit()
            except ProvisionError as e:
                session.rollback()
                print(f"faxline provision: {args.file}: {e}", file=sys.stderr)
                return 1
    finally:
        engine.dispose()
    report.discard_documents(FileStore(settings.documents_dir))
    summary = ", ".join(f"{n} {k}" for k, n in report.applied.items())
    print(f"provisioned {summary} from {args.file}")
    for line in report.lines():
        print(line)
    return 0


def _worker(args: argparse.Namespace) -> int:
    from faxline.server import run_worker

    settings = _settings(args)
    listen = None
    if args.sip_listen != "off":
        host, _, port = args.sip_listen.rpartition(":")
        listen = (host.strip("[]"), int(port))
    run_worker(settings, listen)
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
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    serve.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True)
    serve.set_defaults(handler=_serve)

    provision = sub.add_parser("provision", help="create or update tenants and apps from JSON")
    provision.add_argument("--data-dir", type=Path, help="data directory (FAXLINE_DATA_DIR)")
    provision.add_argument("file", type=Path, help="provisioning file (JSON)")
    provision.set_defaults(handler=_provision)

    worker = sub.add_parser("worker", help="run only the dispatcher (shares the database)")
    worker.add_argument("--data-dir", type=Path, help="data directory (FAXLINE_DATA_DIR)")
    worker.add_argument(
        "--sip-listen",
        metavar="HOST:PORT",
        default="127.0.0.1:0",
        help="SIP address for outbound calls (default 127.0.0.1, any port; 'off' for none)",
    )
    worker.set_defaults(handler=_worker)

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
