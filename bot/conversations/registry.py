"""Flows by name: the dialogue state row stores the name, the registry finds the code."""

from __future__ import annotations

from bot.conversations.engine import Flow

_FLOWS: dict[str, Flow] = {}


def register(flow: Flow) -> Flow:
    _FLOWS[flow.name] = flow
    return flow


def get_flow(name: str) -> Flow | None:
    _load()
    return _FLOWS.get(name)


def _load() -> None:
    """Import the dialogue modules once, so that each registers its flows."""
    if _FLOWS:
        return
    from bot.conversations import form_runner, language, linking, onboarding, villages  # noqa: F401
