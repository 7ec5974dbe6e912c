"""The form of an invite code: typed in chat, printed on a slip, carried by a Telegram deep link.

Kept apart from the invite service (bot/services/invites.py) so that the printed slips
(bot/reports/invite_slips.py), lower in the house, read and write codes the same way.
"""

from __future__ import annotations

import re
import unicodedata

# No 0/O, 1/I/L: codes are read over the phone and copied from paper.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
# Spaces, dashes of every kind, dots and underscores people put between the two halves.
_SEPARATORS = re.compile(r"[\s\-_.\u2010-\u2015\u2212]+")
_VALID = re.compile(f"[{ALPHABET}]{{{CODE_LENGTH}}}")
# What Telegram accepts after ?start= (https://core.telegram.org/bots/features#deep-linking):
# A-Z, a-z, 0-9, _ and -, at most 64 characters.
_TELEGRAM_START = re.compile(r"[A-Za-z0-9_-]{1,64}")


def normalise_code(text: str) -> str:
    """What the person typed → the stored form: " abcd-efgh " → "ABCDEFGH"."""
    text = unicodedata.normalize("NFKC", text)  # full-width letters from some phone keyboards
    return _SEPARATORS.sub("", text).upper()


def format_code(code: str) -> str:
    """The stored form → the form to show: "ABCDEFGH" → "ABCD-EFGH"."""
    code = normalise_code(code)
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}" if len(code) == CODE_LENGTH else code


def is_well_formed(code: str) -> bool:
    return _VALID.fullmatch(normalise_code(code)) is not None


def telegram_start_link(bot_username: str, code: str) -> str:
    """https://t.me/<bot>?start=<code>: opening it sends "/start ABCDEFGH" to the bot, which
    redeems the code after the consent question (bot/conversations/flows/onboarding.py)."""
    payload = normalise_code(code)  # the stored form: letters and digits only, no hyphen
    if _TELEGRAM_START.fullmatch(payload) is None:
        raise ValueError(f"not a code Telegram can carry: {code!r}")
    return f"https://t.me/{bot_username.strip().lstrip('@')}?start={payload}"
