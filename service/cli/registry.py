"""Registry subcommands of ``tipline``: ``dev seed``, ``routing`` and ``deadlines`` (admin data)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from service.cli.common import CLI_ACTOR, in_session


def add_parsers(sub: Any) -> None:
    dev = sub.add_parser("dev", help="development helpers").add_subparsers(dest="dev_command", required=True)
    seed = dev.add_parser("seed", help="fill the database with realistic sealed clues (never in production)")
    seed.add_argument("--clues", type=int, required=True, help="how many clues")
    seed.add_argument("--batch", type=int, default=5000)
    seed.add_argument("--investigators", type=int, default=60)
    seed.add_argument(
        "--prefix", default="SEED", help="registry-number prefix of seeded clues (default SEED)"
    )

    routing = sub.add_parser("routing", help="routing rules").add_subparsers(
        dest="routing_command", required=True
    )
    add = routing.add_parser("add", help="add a rule: category + accused unit → handling unit (+ assignee)")
    add.add_argument("--handling-unit", required=True, help="unit name or id")
    add.add_argument("--category", help="taxonomy category id (default: any)")
    add.add_argument("--accused-unit", help="unit name or id; matches its whole subtree (default: any)")
    add.add_argument("--assignee", help="default investigator, name or id")
    add.add_argument("--priority", type=int, default=100)
    disable = routing.add_parser("disable", help="disable a rule by id")
    disable.add_argument("rule_id")
    routing.add_parser("list", help="list rules")

    limits = sub.add_parser("deadlines", help="deadline rules").add_subparsers(
        dest="deadlines_command", required=True
    )
    limit = limits.add_parser(
        "add", help="add a time limit for a stage (optionally per source and/or category)"
    )
    limit.add_argument("--stage", required=True)
    limit.add_argument("--source")
    limit.add_argument("--category")
    group = limit.add_mutually_exclusive_group(required=True)
    group.add_argument("--working-days", type=int)
    group.add_argument("--months", type=int)
    remove = limits.add_parser("remove", help="remove a rule by id")
    remove.add_argument("rule_id")
    limits.add_parser("list", help="list rules (defaults apply where none matches)")


async def run_dev(args: argparse.Namespace, settings: Any) -> int:
    from service.app.runtime import build_runtime
    from service.platform.migrations import ensure_schema
    from service.registry import recusal
    from service.registry.seed import seed_clues

    if settings.environment == "production":
        print("tipline: refusing to seed a production database", file=sys.stderr)
        return 2
    if args.clues < 1:
        print("tipline: --clues must be at least 1", file=sys.stderr)
        return 2
    runtime = build_runtime(settings, frozenset({"staff"}))
    try:
        await ensure_schema(runtime.engine, auto_upgrade=False)

        def progress(done: int) -> None:
            if done % 50_000 < args.batch or done == args.clues:
                print(f"  {done} clues", file=sys.stderr, flush=True)

        report = await seed_clues(
            runtime.session_factory,
            keys=runtime.keys,
            accused_index_key=runtime.lookup_key("accused-index"),
            words_key=runtime.lookup_key(recusal.WORDS_KEY_LABEL),
            count=args.clues,
            prefix=args.prefix,
            investigators=args.investigators,
            batch=args.batch,
            progress=progress,
        )
    finally:
        await runtime.close()
    rate = report.clues / report.seconds if report.seconds else 0
    print(f"seeded {report.clues} clues in {report.seconds:.1f} s ({rate:.0f}/s)")
    return 0


async def run_routing(args: argparse.Namespace, settings: Any) -> int:
    from service.auth import service as auth_service
    from service.platform.errors import NotFound
    from service.registry import routing

    async def work(session: Any) -> list[str]:
        if args.routing_command == "add":
            handling = await auth_service.find_unit(session, args.handling_unit)
            accused = await auth_service.find_unit(session, args.accused_unit) if args.accused_unit else None
            assignee = await auth_service.find_staff(session, args.assignee) if args.assignee else None
            rule = await routing.add_rule(
                session,
                data=routing.RuleInput(
                    handling_unit_id=handling.id,
                    category=args.category,
                    accused_unit_id=accused.id if accused else None,
                    default_assignee_id=assignee.id if assignee else None,
                    priority=args.priority,
                ),
                actor=CLI_ACTOR,
            )
            return [f"created routing rule {rule.id}"]
        if args.routing_command == "disable":
            rules = {r.id: r for r in await routing.list_rules(session)}
            if args.rule_id not in rules:
                raise NotFound("分办规则不存在", message_en="no such routing rule")
            rule = rules[args.rule_id]
            data = routing.RuleInput(
                handling_unit_id=rule.handling_unit_id,
                category=rule.category,
                accused_unit_id=rule.accused_unit_id,
                default_assignee_id=rule.default_assignee_id,
                priority=rule.priority,
                enabled=False,
            )
            await routing.update_rule(session, rule_id=rule.id, data=data, actor=CLI_ACTOR)
            return [f"disabled {rule.id}"]
        return [
            f"{r.id}  priority={r.priority}  category={r.category or '*'}"
            f"  accused_unit={r.accused_unit_id or '*'}"
            f"  → unit={r.handling_unit_id}  assignee={r.default_assignee_id or '-'}"
            + ("" if r.enabled else "  DISABLED")
            for r in await routing.list_rules(session)
        ]

    for line in await in_session(settings, work):
        print(line)
    return 0


async def run_deadlines(args: argparse.Namespace, settings: Any) -> int:
    from service.registry import routing
    from service.registry.deadlines import DEFAULT_LIMITS

    async def work(session: Any) -> list[str]:
        if args.deadlines_command == "add":
            rule = await routing.add_deadline_rule(
                session,
                stage=args.stage,
                source=args.source,
                category=args.category,
                working_days=args.working_days,
                months=args.months,
                actor=CLI_ACTOR,
            )
            return [f"created deadline rule {rule.id}"]
        if args.deadlines_command == "remove":
            await routing.delete_deadline_rule(session, rule_id=args.rule_id, actor=CLI_ACTOR)
            return [f"removed {args.rule_id}"]
        lines = [
            f"default  {stage.value}: "
            + (f"{limit.working_days} working days" if limit.months is None else f"{limit.months} month(s)")
            for stage, limit in DEFAULT_LIMITS.items()
        ]
        for r in await routing.list_deadline_rules(session):
            amount = f"{r.working_days} working days" if r.working_days else f"{r.months} month(s)"
            lines.append(
                f"{r.id}  {r.stage}: {amount}  source={r.source or '*'}  category={r.category or '*'}"
            )
        return lines

    for line in await in_session(settings, work):
        print(line)
    return 0


COMMANDS = {"dev": run_dev, "routing": run_routing, "deadlines": run_deadlines}
