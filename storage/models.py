"""SQLAlchemy models: units, contacts, roles, invites, dialogue state, forms, submissions, audit.

The unit tree is data-driven (a unit has a parent, a kind and validity dates) rather than a fixed
depth, because districts existed before 1 July 2025 and villages are merged and renamed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (which has no timezone) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON}


# Unit kinds. A village-level unit is any of the village kinds (thôn, bản, ấp, tổ dân phố…).
PROVINCE = "province"
DISTRICT = "district"
COMMUNE = "commune"
VILLAGE = "village"
RESIDENTIAL_GROUP = "residential_group"
VILLAGE_KINDS = (VILLAGE, RESIDENTIAL_GROUP)


class Unit(Base):
    __tablename__ = "units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    # Vietnamese designation as the source gives it ("Phường", "Xã", "Thôn", "Tổ dân phố").
    division_type: Mapped[str | None] = mapped_column(String(64))
    code: Mapped[str | None] = mapped_column(String(16), unique=True)  # national code, when any
    name: Mapped[str] = mapped_column(String(255))
    name_folded: Mapped[str] = mapped_column(String(255), index=True)  # lower case, no diacritics
    # The path of ids from the root, "/1/57/4012/": subtree queries are one LIKE on an index.
    path: Mapped[str] = mapped_column(String(255), index=True, default="")
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    source: Mapped[str | None] = mapped_column(String(64))  # e.g. "vietnam-provinces 2025.10.1"
    created_at: Mapped[datetime]


class Contact(Base):
    """A person, whatever channels they use."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(255))
    locale: Mapped[str] = mapped_column(String(8), default="vi")
    consent_at: Mapped[datetime | None]
    home_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))  # a member's village
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime | None]


class ChannelIdentity(Base):
    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    blocked_at: Mapped[datetime | None]  # the person blocked the bot on this channel
    created_at: Mapped[datetime]


# Roles.
MEMBER = "member"
VILLAGE_OFFICER = "village_officer"
COMMUNE_OFFICER = "commune_officer"
PROVINCE_STAFF = "province_staff"
ADMIN = "admin"
ROLES = (MEMBER, VILLAGE_OFFICER, COMMUNE_OFFICER, PROVINCE_STAFF, ADMIN)
OFFICER_ROLES = (VILLAGE_OFFICER, COMMUNE_OFFICER, PROVINCE_STAFF, ADMIN)


class RoleGrant(Base):
    """A role bound to a unit: the contact acts in that unit's subtree."""

    __tablename__ = "role_grants"
    __table_args__ = (UniqueConstraint("contact_id", "role", "unit_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    granted_at: Mapped[datetime]
    invite_id: Mapped[int | None] = mapped_column(ForeignKey("invites.id"))
    revoked_at: Mapped[datetime | None]


class Invite(Base):
    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    role: Mapped[str] = mapped_column(String(32))
    max_uses: Mapped[int] = mapped_column(Integer, default=1)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime]
    created_by_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    created_at: Mapped[datetime]
    # The officer's name as the commune wrote it in an onboarding upload (a name only, no phone),
    # printed on the slip; None for codes made in chat or for all villages at once.
    invitee_name: Mapped[str | None] = mapped_column(String(100))
    # Set by revoke_invite: the code is then refused like an unknown one (bot/services/invites.py).
    revoked_at: Mapped[datetime | None]


class DialogueState(Base):
    """One row per contact: where their conversation stands (never kept in process memory)."""

    __tablename__ = "dialogue_states"

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), primary_key=True)
    flow: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime]


class FormVersion(Base):
    """A form definition as it was when submissions were made against it."""

    __tablename__ = "form_versions"
    __table_args__ = (UniqueConstraint("form_key", "digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    form_key: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    loaded_at: Mapped[datetime]


class Submission(Base):
    """One version of one record. A correction is a new version; nothing is overwritten.

    `record_key` names the record: for a village report, the unit and period; for an activity
    report, an id of its own (several activities per unit and period).
    """

    __tablename__ = "submissions"
    __table_args__ = (
        UniqueConstraint("form_key", "record_key", "version"),
        Index("ix_submissions_unit_period", "form_key", "unit_id", "period"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    form_key: Mapped[str] = mapped_column(String(64))
    record_key: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    period: Mapped[str] = mapped_column(String(16))  # "2026-H1", "2026"
    form_version_id: Mapped[int | None] = mapped_column(ForeignKey("form_versions.id"))
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Who filed it; NULL once that person had their data deleted (/xoadulieu): the report is an
    # official record and stays, attributed to its unit and to the role below instead.
    submitted_by_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    submitted_by_role: Mapped[str | None] = mapped_column(String(32))
    submitted_at: Mapped[datetime]
    channel: Mapped[str | None] = mapped_column(String(16))


class ProcessedUpdate(Base):
    """Platform update ids already handled: a webhook delivered twice is processed once."""

    __tablename__ = "processed_updates"
    __table_args__ = (UniqueConstraint("channel", "update_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    update_id: Mapped[str] = mapped_column(String(128))
    processed_at: Mapped[datetime]


class OutboxMessage(Base):
    """A message to send, committed in the same transaction as what caused it."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    not_before: Mapped[datetime | None]
    sent_at: Mapped[datetime | None] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failed_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class AuditEntry(Base):
    """Who did what: invites used, roles granted, submissions, villages added or renamed."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime]
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    action: Mapped[str] = mapped_column(String(64))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
