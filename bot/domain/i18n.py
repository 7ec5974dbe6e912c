"""Translations (gettext catalogs read with Babel) and locale-aware formatting.

Messages in code are English msgids marked with `t("...")` or, at module level, `N_("...")`.
Every number, amount of money, percentage and date that a person reads — in questions, rule
messages (bot.domain.forms.rules.format_value), summaries, reminders and compiled reports — is
written by the Translator's methods below, through Babel, for that person's locale.
The catalogs `bot/domain/locales/{vi,en}/LC_MESSAGES/messages.po` translate them; Vietnamese is the
default locale. The .po files are read directly, so there is no compile step to forget.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent

LOCALES_DIR = Path(__file__).parent / "locales"
SUPPORTED = ("vi", "en")
DEFAULT_LOCALE = "vi"
DOMAIN = "messages"


def N_(msgid: str) -> str:
    """Mark a string for extraction without translating it yet."""
    return msgid


@cache
def catalog(locale: str) -> dict[str, str]:
    path = LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        cat = read_po(fh, locale=locale)
    return {str(m.id): str(m.string) for m in cat if m.id and m.string and not m.fuzzy}


class Translator:
    """Translate and format for one locale. `t("Hello {name}", name=...)`."""

    def __init__(self, locale: str) -> None:
        self.locale = locale if locale in SUPPORTED else DEFAULT_LOCALE
        self._catalog = catalog(self.locale)
        self._babel_locale = Locale.parse(self.locale)

    def __call__(self, msgid: str, /, **kwargs: object) -> str:
        text = self._catalog.get(msgid, msgid)
        return text.format(**kwargs) if kwargs else text

    def number(self, value: int | float) -> str:
        """'12.345' in Vietnamese, '12,345' in English."""
        return format_decimal(value, locale=self._babel_locale)

    def money(self, value: int) -> str:
        """Whole VND: '1.250.000 ₫' in Vietnamese, '₫1,250,000' in English."""
        return format_currency(value, "VND", locale=self._babel_locale, currency_digits=True)

    def percent(self, value: float) -> str:
        """A percentage given as 0–100, to one decimal: '12,3%'."""
        return format_percent(value / 100, "#,##0.#%", locale=self._babel_locale)

    def date(self, value: date) -> str:
        """'05/10/2026' in Vietnamese, 'Oct 5, 2026' in English."""
        pattern = "dd/MM/yyyy" if self.locale == "vi" else "medium"
        return format_date(value, format=pattern, locale=self._babel_locale)


@cache
def translator(locale: str) -> Translator:
    return Translator(locale)
