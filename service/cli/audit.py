"""`tipline audit`: verify the hash chains, sign and check checkpoints."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from service.cli.common import CLI_ACTOR, in_session


def add_parsers(sub: Any) -> None:
    audit = sub.add_parser("audit", help="audit trail").add_subparsers(dest="audit_command", required=True)
    verify = audit.add_parser("verify", help="check every hash chain; exit 1 naming the first bad entry")
    verify.add_argument(
        "--checkpoint",
        type=Path,
        help="compare with this signed checkpoint (default: the newest in TIPLINE_AUDIT_CHECKPOINT_DIR)",
    )
    checkpoint = audit.add_parser("checkpoint", help="sign the chain heads now and export the checkpoint")
    checkpoint.add_argument("--out", type=Path, required=True, help="checkpoint file to write")


async def _audit(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from service.audit import checkpoints
    from service.audit import service as audit_service

    if args.audit_command == "checkpoint":
        return await _audit_checkpoint(args, settings)
    # Without a file named, the newest automatic checkpoint: entries deleted from before it are noticed.
    checkpoint = args.checkpoint or checkpoints.newest_checkpoint_file(
        settings.effective_audit_checkpoint_dir
    )
    if checkpoint is not None:
        try:
            document = json.loads(checkpoint.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            print(f"tipline: cannot read checkpoint {checkpoint}", file=sys.stderr)
            return 2
        trusted = checkpoints.trusted_public_key(settings.effective_keys_dir)
        problems = await in_session(
            settings, lambda s: checkpoints.verify_against(s, document, trusted=trusted)
        )
        for problem in problems:
            print(f"audit trail does NOT match the checkpoint: {problem}", file=sys.stderr)
        if problems:
            return 1
        print(f"audit trail matches checkpoint {checkpoint.name} of {document.get('created_at')}")
    report = await in_session(settings, audit_service.verify)
    if report.problem:
        print(f"audit trail BROKEN at {report.problem.describe()}", file=sys.stderr)
        return 1
    print(f"audit trail intact: {report.entries} entries in {report.chains} chain(s)")
    return 0


async def _audit_checkpoint(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from service.audit import checkpoints

    key = checkpoints.load_or_create_signing_key(settings.effective_keys_dir, settings.crypto_suite)
    document = await in_session(
        settings, lambda s: checkpoints.create_checkpoint(s, key=key, actor=CLI_ACTOR)
    )
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"checkpoint of {len(document['heads'])} chain(s) signed by {key.key_id} written to {args.out}")
    return 0


COMMANDS = {"audit": _audit}
