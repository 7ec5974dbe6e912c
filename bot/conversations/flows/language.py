"""/ngonngu: change the language of the bot's messages."""

from __future__ import annotations

from typing import Any

from bot.conversations.engine import Context, Flow, State, Step, ask, chosen
from bot.domain.i18n import translator
from bot.domain.messages import Incoming, Option, Reply


class Language(Flow):
    name = "language"

    async def start(self, ctx: Context, args: dict[str, Any]) -> Step:
        state: State = {}
        text = "Chọn ngôn ngữ / Choose your language"
        return Step([ask(state, text, [Option("vi", "Tiếng Việt"), Option("en", "English")])], state)

    async def resume(self, ctx: Context, state: State, msg: Incoming) -> Step:
        pick = chosen(state, msg)
        if pick not in ("vi", "en"):
            return Step(
                [Reply("Vui lòng chọn 1 hoặc 2. / Please choose 1 or 2.")] + await self.reprompt(ctx, state),
                state,
            )
        ctx.set_locale(translator(pick))
        return Step(
            [Reply(ctx.t("Language changed: I will write in English."))], None, ("menu", {"quiet": True})
        )
