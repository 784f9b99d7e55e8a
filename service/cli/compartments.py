"""``tipline compartments adopt``: move clues registered before compartments into them, on a host that holds
the case private key (``service.registry.adoption``). Resumable: one transaction per chunk; run it again to
continue."""

from __future__ import annotations

import argparse

from service.cli.common import CLI_ACTOR, in_session


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = sub.add_parser("compartments", help="compartments: adopt clues registered before them")
    cs = group.add_subparsers(dest="compartments_command", required=True)
    adopt = cs.add_parser(
        "adopt",
        help="seal old clues (fields and items) under their own content key and drop the case-key copy "
        "(resumable, audited; needs the case private key)",
    )
    adopt.add_argument("--chunk", type=int, default=50, help="clues per transaction")
    adopt.add_argument("--max-chunks", type=int, help="stop after this many chunks (run again to continue)")
    adopt.add_argument("--dry-run", action="store_true", help="only count the clues and items to convert")


async def _compartments(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    import service.app.models  # noqa: F401 - every domain's tables: adoption reaches the items by table name
    from service.app.runtime import load_keys, require_case_key
    from service.registry import adoption

    if args.chunk < 1:
        raise SystemExit("tipline: --chunk must be at least 1")
    keys = require_case_key(settings, load_keys(settings, frozenset({"staff"})))
    if args.dry_run:
        plan = await in_session(settings, lambda s: adoption.plan(s, keys=keys))
        print(
            f"{plan.clues} clue(s) to adopt, {plan.items} case-key item(s) to reseal; "
            f"{plan.compartmented} compartmented clue(s) still holding case-key items or a case-key copy"
            + (
                f" ({plan.unreachable} without a public half: a holder's read stores it)"
                if plan.unreachable
                else ""
            )
        )
        return 0
    left = await in_session(settings, lambda s: adoption.started(s, actor=CLI_ACTOR, chunk=args.chunk))
    adopted = settled = items = chunks = 0
    after: str | None = None  # compartmented clues: where the walk stands
    while left and (args.max_chunks is None or chunks < args.max_chunks):
        done = await in_session(
            settings, lambda s: adoption.adopt(s, keys=keys, actor=CLI_ACTOR, limit=args.chunk, after=after)
        )
        verb = "settled" if done.after is not None else "adopted"  # a chunk of compartmented clues, or old
        adopted, settled = (adopted, settled + done.clues) if done.after else (adopted + done.clues, settled)
        items, chunks, left, after = items + done.items, chunks + 1, done.remaining, done.after
        print(f"{verb} {done.clues} clue(s), {done.items} item(s); {done.remaining} left")
        if not done.clues:
            break
    await in_session(
        settings,
        lambda s: adoption.finished(s, actor=CLI_ACTOR, clues=adopted + settled, items=items, after=after),
    )
    again = " (run again to continue)" if left else ""
    print(
        f"adopted {adopted} clue(s), settled {settled} compartmented clue(s) and resealed {items} item(s); "
        f"{left} left{again}"
    )
    return 0


COMMANDS = {"compartments": _compartments}
