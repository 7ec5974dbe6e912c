"""Per-key asyncio locks: the in-process half of "one contact, one step at a time".

Across processes a contact's steps queue on a row lock in PostgreSQL (storage.repositories,
`ContactRepository.lock_with_dialogue`). Inside one process they queue here first, so that a burst
of one person's messages waits in memory instead of holding a pooled connection each, blocked on
the row. `asyncio.Lock` wakes its waiters in the order they came, so the order of arrival holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


class KeyedLocks:
    """One lock per key (a person on a channel): holders of a key go one after another, in order.

    Locks are dropped when nobody holds or waits for them, so the map stays small.
    """

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
