"""What a dossier says in words: the ONE place the report and message texts for a hand-off come from.

``masked_texts`` is the text as staff see it (personal data masked at intake:
``classification.pii.mask_texts``): the report, the accused person's details, the messages and a hotline
caller's later additions and corrections; ``redacted_texts``, what a dossier and the onward view show, is
that with the latest redacted version of each text that has one (``service.redaction``).
``service.export_dossier`` takes the source as a parameter.

Invariants: a text source returns only what staff may read (never the identity envelope, never the
originals kept under the identity key, never an uploaded file's name); its reads are audited by the
services it calls (``clue.read``, ``message.read``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.service import Principal
from service.messages import service as messages_service
from service.platform.runtime import Runtime
from service.redaction import service as redaction_service
from service.registry import service as registry_service


@dataclass(frozen=True)
class ShownMessage:
    id: str
    direction: str  # to_reporter | from_reporter
    at: datetime
    text: str
    attachment_ids: tuple[str, ...]


@dataclass(frozen=True)
class ShownAddition:
    id: str
    kind: str  # operator_addition | caller_confirmation
    at: datetime
    fields: dict[str, str]  # text fields: "text" (an addition), "correction" (a caller's correction)
    confirmed: bool | None  # a caller's confirmation: whether they confirmed the operator's record


@dataclass(frozen=True)
class ShownTexts:
    report: str
    incident: dict[str, Any]  # time and place as the reporter gave them (masked with the report)
    accused: dict[str, Any]  # the person reported on: name, unit, position, rank, region
    messages: tuple[ShownMessage, ...]
    additions: tuple[ShownAddition, ...] = ()


class TextSource(Protocol):
    """Where a dossier's words come from: ``redacted_texts`` (the default) or ``masked_texts``."""

    async def __call__(
        self, session: AsyncSession, *, clue_id: str, principal: Principal, runtime: Runtime
    ) -> ShownTexts: ...


async def masked_texts(
    session: AsyncSession, *, clue_id: str, principal: Principal, runtime: Runtime
) -> ShownTexts:
    """The report, the conversation and the caller's later additions as staff see them: masked, no
    identity.

    Left out on purpose: the other texts of a submission (``notes``: e.g. a caller's call-back
    instructions, which are about reaching the reporter) and staff's free-text reasons in the history."""
    view = await registry_service.read_clue(session, clue_id=clue_id, principal=principal, keys=runtime.keys)
    messages = await messages_service.staff_list(
        session, clue_id=clue_id, principal=principal, keys=runtime.keys
    )
    additions = await redaction_service.addition_texts(
        session, clue_id=clue_id, principal=principal, keys=runtime.keys
    )
    return ShownTexts(
        report=view.text,
        incident=dict(view.incident),
        accused=dict(view.accused),
        messages=tuple(
            ShownMessage(m.id, m.direction, m.created_at, m.text, tuple(a.id for a in m.attachments))
            for m in messages
        ),
        additions=tuple(ShownAddition(a.id, a.kind, a.created_at, a.fields, a.confirmed) for a in additions),
    )


async def redacted_texts(
    session: AsyncSession, *, clue_id: str, principal: Principal, runtime: Runtime
) -> ShownTexts:
    """The masked texts with each redacted one replaced by its latest version: what goes onward."""
    masked = await masked_texts(session, clue_id=clue_id, principal=principal, runtime=runtime)
    latest = await redaction_service.latest_texts(
        session, clue_id=clue_id, principal=principal, keys=runtime.keys
    )
    report = redaction_service.TextTarget("report", clue_id)

    def accused(field: str, value: Any) -> Any:
        return latest.get(redaction_service.TextTarget("accused", clue_id, field), value)

    return ShownTexts(
        report=latest.get(report, masked.report),
        incident=masked.incident,
        accused={field: accused(field, value) for field, value in masked.accused.items()},
        messages=tuple(
            ShownMessage(
                m.id,
                m.direction,
                m.at,
                latest.get(redaction_service.TextTarget("message", m.id), m.text),
                m.attachment_ids,
            )
            for m in masked.messages
        ),
        additions=tuple(
            ShownAddition(
                a.id,
                a.kind,
                a.at,
                {
                    f: latest.get(redaction_service.TextTarget("addition", a.id, f), v)
                    for f, v in a.fields.items()
                },
                a.confirmed,
            )
            for a in masked.additions
        ),
    )
