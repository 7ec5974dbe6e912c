"""Server-rendered pages: one Jinja2 environment over templates/, with the staff's words.

Every template gets `t` (the staff member's Translator: `{{ t("Villages") }}`, `t.number(x)`,
`t.percent(x)`, `t.date(d)`, `t.money(x)`), `staff`, `nav` (the header's links they may use),
`csrf_field()` (the hidden input of every POST form) and `locale`. The words are in the same
catalogs as the chat's (scripts/update_catalogs.py reads `t("…")` in the templates too).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from bot.channels.console.auth import CSRF_FIELD, StaffSession
from bot.channels.console.nav import NAV
from bot.domain.i18n import Translator
from bot.domain.text import sentence_case

TEMPLATES = Path(__file__).parent / "templates"


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["sentence"] = sentence_case  # "năm 2026" starting a line or an option: "Năm 2026"
    return env


def render(
    request: Request,
    staff: StaffSession | None,
    name: str,
    status: int = 200,
    *,
    locale: str = "vi",
    **ctx: Any,
) -> HTMLResponse:
    """The template `name` as a page for `staff` (None: a page shown before logging in)."""
    t = staff.t if staff is not None else Translator(locale)
    csrf = staff.csrf if staff is not None else ""

    def csrf_field() -> Markup:
        return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, escape(csrf))

    nav = [item for item in NAV if staff is not None and staff.holds(item.action)]
    html = (
        environment()
        .get_template(name)
        .render(
            t=t,
            staff=staff,
            nav=nav,
            csrf_field=csrf_field,
            locale=t.locale,
            path=request.url.path,
            **ctx,
        )
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
