"""Log out: a web chat id is the browser's only credential, so logging out revokes it on the server.

Done by the person for themselves (whoever holds the id *is* that person to the bot), so there is
no permission to check. The identity row stays (link codes and the audit log refer to it) but its
id becomes a tombstone no client can send (it fails the channel's id pattern), and the messages
waiting for that browser move with it: the old id, if it was copied, reaches nothing. The contact
stays too: an officer returns through /lienket from another chat, or a new invite.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from storage.uow import UnitOfWork

TOMBSTONE_PREFIX = "revoked:"


async def log_out(uow: UnitOfWork, channel: str, external_id: str, now: datetime) -> bool:
    """Revoke the identity `external_id` on `channel`; False when there is none (already revoked)."""
    await uow.contacts.lock_with_dialogue(channel, external_id)  # waits for a step in flight
    identity = await uow.channels.identity(channel, external_id)
    if identity is None:
        return False
    stored = identity.external_id  # as the identity stores it (the id, or a hash of it)
    tombstone = TOMBSTONE_PREFIX + secrets.token_hex(16)
    await uow.channels.revoke_identity(identity, tombstone, now, {stored, external_id})
    uow.audit.add(now, "identity.revoke", identity.contact_id, channel=channel, identity_id=identity.id)
    return True
