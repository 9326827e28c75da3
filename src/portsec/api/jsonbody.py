"""Request bodies as JSON, refused when they would crash the server later rather than give a 400 now.

``json.loads`` accepts two things that then fail as 500s:

- deep nesting: the C decoder recurses once per ``[`` or ``{`` and raises
  RecursionError near 1,000 levels (and anything that walks the result later
  recurses too). Neutron bodies are about 4 levels deep; MAX_DEPTH is ample.
- lone surrogates: ``"\\ud800"`` (or its UTF-8 form, which ``json.loads`` lets
  through with 'surrogatepass') becomes a str that cannot be encoded to UTF-8,
  so the database, the response or the log line fails on it.

The depth is measured on the raw bytes before decoding, without recursion; the
surrogates are looked for in the decoded value, keys included, with a stack.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 32

# A JSON string, escapes included; brackets inside do not nest. An unclosed one runs to the end: then the
# pattern cannot fail, so it never backtracks (a failing one would rescan from each later quote: quadratic).
_STRING = re.compile(rb'"[^"\\]*(?:\\.?[^"\\]*)*(?:"|\Z)', re.DOTALL)
# Every byte but the four brackets, deleted by bytes.translate; the opening and closing ones made alike.
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_ONE_KIND = bytes.maketrans(b"{}", b"[]")
_DEEPER = b"[" * (MAX_DEPTH + 1)
_SURROGATE = re.compile("[\ud800-\udfff]")


class InvalidJSON(ValueError):
    """A body portsec does not accept; ``why`` is empty for plain syntax errors."""

    def __init__(self, why: str = "") -> None:
        super().__init__(why or "not valid JSON")
        self.why = why


def loads(raw: bytes) -> Any:
    if _too_deep(raw):
        raise InvalidJSON(f"it nests deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidJSON() from None
    if _holds_surrogate(value):
        raise InvalidJSON("it holds a lone surrogate code point (U+D800 to U+DFFF)")
    return value


def _too_deep(raw: bytes) -> bool:
    """Whether brackets outside strings nest deeper than MAX_DEPTH (or could make json.loads recurse that deep).

    Each ``replace`` removes the innermost level of every nest (an opening bracket
    right before a closing one), in C. After at most MAX_DEPTH rounds a valid body
    within the bound has nothing left; an ``[]`` still there is a deeper nest, and
    more than MAX_DEPTH unclosed brackets would make json.loads recurse as deep
    before it finds the body invalid. Worst case, a crafted 1 MiB body: about
    MAX_DEPTH copies of 1 MiB (tens of ms); a body of Neutron's shape takes a few rounds.
    """
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False
    brackets = _STRING.sub(b"", raw).translate(_ONE_KIND, _NOT_BRACKETS)
    for _ in range(MAX_DEPTH):
        if _DEEPER in brackets:
            return True
        inner_gone = brackets.replace(b"[]", b"")
        if len(inner_gone) == len(brackets):
            break  # no nest left to peel
        brackets = inner_gone
    return b"[]" in brackets or brackets.count(b"[") > MAX_DEPTH


def _holds_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
