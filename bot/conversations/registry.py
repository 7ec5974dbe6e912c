"""Flows by name: the dialogue state row stores the name, the registry finds the code."""

from __future__ import annotations

from bot.conversations.engine import Flow

_FLOWS: dict[str, Flow] = {}
_loaded = False


def register(flow: Flow) -> Flow:
    _FLOWS[flow.name] = flow
    return flow


def get_flow(name: str) -> Flow | None:
    _load()
    return _FLOWS.get(name)


def _load() -> None:
    """Import the dialogue modules once, so that each registers its flows.

    Guarded by a flag, not by `_FLOWS` being non-empty: a module imported early (by a handler)
    registers its flows before the first lookup, and the others must still be loaded.
    """
    global _loaded
    if _loaded:
        return
    _loaded = True
    from bot.conversations.flows import (  # noqa: F401
        broadcast,
        form_runner,
        language,
        linking,
        onboarding,
        outreach_flows,
        summary,
        villages,
    )
