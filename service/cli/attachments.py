"""`tipline attachments reseal-names`: maintenance for attachment rows stored before uploaded file names
were sealed to the identity key. Run where the case private key is (a staff machine's keys dir): it opens
each old case-key name and seals it to the identity key; audited, and a second run changes nothing."""

from __future__ import annotations

import argparse
from typing import Any


def add_parsers(sub: Any) -> None:
    group = sub.add_parser("attachments", help="attachment maintenance").add_subparsers(
        dest="attachments_command", required=True
    )
    group.add_parser(
        "reseal-names",
        help="re-seal uploaded file names still under the case key to the identity key (needs the case key)",
    )


async def _attachments(args: argparse.Namespace, settings: Any) -> int:
    from service.app.runtime import load_keys, require_case_key
    from service.attachments import service as attachments_service
    from service.cli.common import CLI_ACTOR, in_session

    keys = require_case_key(settings, load_keys(settings, frozenset({"staff"})))
    count = await in_session(
        settings,
        lambda session: attachments_service.reseal_uploaded_names(session, keys=keys, actor=CLI_ACTOR),
    )
    print(f"{count} attachment name(s) re-sealed to the identity key")
    return 0


COMMANDS = {"attachments": _attachments}
