"""The dialogues, one module each. They call services and repositories, never the session."""

from __future__ import annotations

from typing import Any

from bot.conversations.engine import Flow
from bot.conversations.flows.broadcast import BroadcastComposer
from bot.conversations.flows.data_rights import EraseMyData
from bot.conversations.flows.form_runner import FormRunner
from bot.conversations.flows.language import Language
from bot.conversations.flows.linking import Linking
from bot.conversations.flows.onboarding import Onboarding
from bot.conversations.flows.outreach_flows import Status, Topics
from bot.conversations.flows.profile import ProfileFlow
from bot.conversations.flows.requests import RequestComposer
from bot.conversations.flows.review import Review
from bot.conversations.flows.summary import Summary
from bot.conversations.flows.villages import Villages


def default_flows() -> list[Flow[Any]]:
    """Every dialogue of the bot, for the composition root's flow table."""
    return [
        BroadcastComposer(),
        EraseMyData(),
        FormRunner(),
        Language(),
        Linking(),
        Onboarding(),
        ProfileFlow(),
        Review(),
        RequestComposer(),
        Topics(),
        Status(),
        Summary(),
        Villages(),
    ]
