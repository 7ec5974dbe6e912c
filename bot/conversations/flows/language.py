"""/ngonngu: change the language of the bot's messages."""

from __future__ import annotations

from typing import Any, Literal

from bot.conversations.engine import Context, Flow, FlowState, Step, ask, chosen, phase_table
from bot.domain.i18n import translator
from bot.domain.messages import Incoming, Option, Reply


class LanguageState(FlowState):
    phase: Literal["choose"] = "choose"


class Language(Flow[LanguageState]):
    name = "language"
    state_type = LanguageState

    async def start(self, ctx: Context, args: dict[str, Any]) -> Step:
        state = LanguageState()
        text = "Chọn ngôn ngữ / Choose your language"
        return Step([ask(state, text, [Option("vi", "Tiếng Việt"), Option("en", "English")])], state)

    async def _on_choose(self, ctx: Context, state: LanguageState, msg: Incoming) -> Step:
        """Tiếng Việt or English: switch and go back to the menu."""
        pick = chosen(state, msg)
        if pick not in ("vi", "en"):
            return Step(
                [Reply("Anh/chị vui lòng chọn 1 hoặc 2. / Please choose 1 or 2.")]
                + await self.reprompt(ctx, state),
                state,
            )
        ctx.set_locale(translator(pick))
        return Step(
            [Reply(ctx.t("Language changed: I will write in English."))], None, ("menu", {"quiet": True})
        )

    phases = phase_table({"choose": _on_choose})
