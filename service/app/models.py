"""Every table, imported in one place for Alembic and for tests."""

from service.attachments.models import Attachment
from service.audit.checkpoints import AuditCheckpoint
from service.audit.models import AuditEntry, AuditHead
from service.auth.login_models import LoginThrottle, StaffCredential, StaffSession
from service.auth.models import ApiToken, Staff, StaffRole, Unit
from service.classification.models import (
    ClassificationCorrection,
    ClueLink,
    NearDuplicateBand,
    NearDuplicatePending,
)
from service.compartments.models import ClueKeyWrap, ClueSealed, CompartmentKey, UnitKeyGrant
from service.custody.models import ClueContact, CustodyRequest
from service.handoff.models import Dossier, DossierFeedback
from service.intake.models import Receipt, SubmittedForm
from service.jobs.models import Job
from service.mailbox.models import ReceivedMail
from service.messages.models import Message, ReporterKey
from service.notify.models import NotificationPreference, OutboxMessage
from service.platform.db import Base
from service.redaction.models import Redaction, UnmaskRequest
from service.registry.additions import ClueAddition
from service.registry.models import (
    Clue,
    ClueCategory,
    ClueReminder,
    ClueState,
    ClueTransfer,
    ClueTransition,
    Consultation,
    DeadlineRule,
    ProgressRequest,
    RegistryCounter,
    RoutingRule,
    TransferRequest,
)
from service.retention.models import LegalHold

__all__ = [
    "ApiToken",
    "Attachment",
    "AuditCheckpoint",
    "AuditEntry",
    "AuditHead",
    "Base",
    "ClassificationCorrection",
    "ClueKeyWrap",
    "ClueSealed",
    "CompartmentKey",
    "UnitKeyGrant",
    "ClueLink",
    "NearDuplicateBand",
    "NearDuplicatePending",
    "Clue",
    "ClueAddition",
    "ClueCategory",
    "ClueContact",
    "ClueReminder",
    "ClueState",
    "ClueTransfer",
    "ClueTransition",
    "Consultation",
    "CustodyRequest",
    "DeadlineRule",
    "Dossier",
    "DossierFeedback",
    "ProgressRequest",
    "Job",
    "LegalHold",
    "NotificationPreference",
    "OutboxMessage",
    "ReceivedMail",
    "Redaction",
    "LoginThrottle",
    "Message",
    "Receipt",
    "RegistryCounter",
    "ReporterKey",
    "RoutingRule",
    "TransferRequest",
    "UnmaskRequest",
    "Staff",
    "StaffCredential",
    "StaffRole",
    "StaffSession",
    "SubmittedForm",
    "Unit",
]
