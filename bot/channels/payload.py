"""Reading a webhook body as JSON without trusting it: what every platform channel shares.

Python's json module is used rather than pydantic's parser because it keeps a lone surrogate
("\\ud800", half of an emoji cut in two) as text, which is cleaned here (bot.domain.text) instead
of refusing the whole message; its RecursionError on deep nesting, and any nesting deeper than a
real update has, become a refusal like any bad body.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from bot.domain.text import clean_deep

# A Telegram or Zalo update nests about six levels; this leaves room and bounds the walk.
MAX_DEPTH = 32


class BadUpdate(ValueError):
    """Not an update the channel can read; the message says where, never the content."""


def load_json(body: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """The body as Python data; BadUpdate when it is no JSON or nests deeper than `max_depth`."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise BadUpdate("body: nested too deeply") from None
    except ValueError as exc:  # UnicodeDecodeError included
        raise BadUpdate(f"body: not JSON ({type(exc).__name__})") from None
    if _deeper_than(data, max_depth):
        raise BadUpdate(f"body: nested deeper than {max_depth} levels")
    return clean_deep(data)  # no lone surrogate or control character gets any further


def _deeper_than(data: Any, limit: int) -> bool:
    """Whether `data` nests deeper than `limit` levels, walked without recursion."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, level = stack.pop()
        if level > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return False


def reason(err: ValidationError) -> str:
    """Where a body failed its model, in one line: "message.chat.id: Input should be …"."""
    first = err.errors(include_input=False, include_url=False)[0]
    return f"{'.'.join(str(p) for p in first['loc']) or 'body'}: {first['msg']}"
