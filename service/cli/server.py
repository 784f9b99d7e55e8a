"""`tipline serve`, `tipline mail-receiver`, `tipline mail-outbound-key`: running the service."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from service.cli.db import run_db


def add_parsers(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run the service (all roles on the embedded default)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--role",
        choices=["intake", "mail", "staff", "worker"],
        action="append",
        help="run only these roles (repeatable); default: all",
    )
    serve.add_argument("--upgrade", action="store_true", help="apply pending database migrations first")
    serve.add_argument(
        "--workers", type=int, default=1, help="HTTP worker processes (uvicorn --workers); default 1"
    )
    serve.add_argument(
        "--smtp-port",
        type=int,
        default=None,
        help="SMTP receiver port with the mail role (default 2525; 0: off)",
    )
    mail_receiver = sub.add_parser("mail-receiver", help="run only the SMTP receiver (and the IMAP poller)")
    mail_receiver.add_argument(
        "--smtp-port", type=int, default=None, help="default 2525; 0: IMAP poller only"
    )
    sub.add_parser("mail-outbound-key", help="generate the outbound key pair (acknowledgement addresses)")


def _serve(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    import uvicorn

    from service.app.main import create_app
    from service.app.runtime import ROLES

    if args.upgrade:
        settings = settings.model_copy(update={"database_auto_upgrade": True})
    roles = frozenset(args.role or ROLES)
    if args.smtp_port is not None:
        settings = settings.model_copy(update={"smtp_port": args.smtp_port})
    from service.app import observability

    observability.configure_logging()
    # The worker role runs the job loop in-process (service/jobs); the mail role's SMTP receiver is started
    # in create_app's lifespan (see the hook there). access_log=False and no proxy headers: the public side
    # never records who connected.
    options = dict(host=args.host, port=args.port, log_config=None)
    options.update(access_log=False, server_header=False, proxy_headers=False)
    if args.workers > 1:
        import os

        if settings.database_auto_upgrade:
            asyncio.run(run_db(argparse.Namespace(db_command="upgrade"), settings))
        os.environ["TIPLINE_SERVE_ROLES"] = ",".join(sorted(roles))
        uvicorn.run("service.app.main:create_app_from_env", factory=True, workers=args.workers, **options)
        return 0
    run_smtp = "mail" in roles and settings.smtp_port != 0
    uvicorn.run(create_app(settings, roles, run_worker="worker" in roles, run_smtp=run_smtp), **options)
    return 0


def _mail_receiver(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from service.app.processes import run_mail_receiver

    asyncio.run(run_mail_receiver(settings, smtp_port=args.smtp_port))
    return 0


def _mail_outbound_key(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from service.notify.keys import generate

    print(f"outbound key {generate(settings).key_id} written to {settings.effective_keys_dir}")
    return 0


COMMANDS = {"serve": _serve, "mail-receiver": _mail_receiver, "mail-outbound-key": _mail_outbound_key}
