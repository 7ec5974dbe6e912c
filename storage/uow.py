"""The unit of work: one transaction, its repositories, and nothing committed until `commit()`."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import Database
from storage.models_channels import ChannelRepository
from storage.models_console import ConsoleRepository
from storage.models_files import KeptFileRepository
from storage.models_limits import InviteTryRepository, RetentionRepository
from storage.models_profiles import ProfileRepository
from storage.models_requests import RequestRepository
from storage.models_secrets import SecretRepository
from storage.readonly import ReadOnlyUnitOfWork
from storage.repositories import (
    AuditRepository,
    BroadcastRepository,
    ContactRepository,
    DialogueRepository,
    InviteRepository,
    OutboxRepository,
    ReportFileRepository,
    SchedulerRepository,
    SubmissionRepository,
    SubscriptionRepository,
    UnitRepository,
    UpdateRepository,
)
from storage.repositories_outreach import (
    ContentRepository,
    NoticeRepository,
    RecipientRepository,
    SentItemRepository,
)
from storage.repositories_personal import PersonalDataRepository
from storage.repositories_reviews import ReviewRepository


class UnitOfWork:
    """`async with uow: ...; await uow.commit()` — leaving without commit rolls back."""

    session: AsyncSession

    def __init__(self, db: Database) -> None:
        self._db = db

    async def __aenter__(self) -> Self:
        if self._db.write_lock is not None:
            await self._db.write_lock.acquire()
        try:
            self.session = self._db.sessions()
            s = self.session
            self.units = UnitRepository(s)
            self.contacts = ContactRepository(s)
            self.invites = InviteRepository(s)
            self.dialogues = DialogueRepository(s)
            self.submissions = SubmissionRepository(s)
            self.audit = AuditRepository(s)
            self.updates = UpdateRepository(s)
            self.outbox = OutboxRepository(s)
            self.notices = NoticeRepository(s)
            self.recipients = RecipientRepository(s)
            self.files = ReportFileRepository(s)
            self.kept_files = KeptFileRepository(s)
            self.content = ContentRepository(s)
            self.sent_items = SentItemRepository(s)
            self.channels = ChannelRepository(s)
            self.subscriptions = SubscriptionRepository(s)
            self.broadcasts = BroadcastRepository(s)
            self.scheduler = SchedulerRepository(s)
            self.reviews = ReviewRepository(s)
            self.personal = PersonalDataRepository(s)
            self.requests = RequestRepository(s)
            self.invite_tries = InviteTryRepository(s)
            self.retention = RetentionRepository(s)
            self.secrets = SecretRepository(s)
            self.profiles = ProfileRepository(s)
            self.console = ConsoleRepository(s)
        except BaseException:
            if self._db.write_lock is not None:
                self._db.write_lock.release()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.session.close()  # rolls back whatever was not committed
        finally:
            if self._db.write_lock is not None:
                self._db.write_lock.release()

    async def commit(self) -> None:
        await self.session.commit()

    async def rollback(self) -> None:
        await self.session.rollback()


# What reads the tables the write and the read-only unit of work both carry (recipients, notices,
# files, content, units, submissions, reviews, profiles): work that runs inside either takes this.
Reads = UnitOfWork | ReadOnlyUnitOfWork
