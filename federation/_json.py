"""Strict JSON for untrusted input (RFC 8259, RFC 7515 §4, RFC 7519 §4).

Owns: turning untrusted UTF-8 bytes into a JSON object, refusing what the
standard library silently accepts — duplicate member names (RFC 7515 §4 lets a
parser reject them; we do, so that no two parsers can disagree about ``alg`` or
``sub``), ``NaN``/``Infinity``, a byte-order mark, lone surrogates, and nesting
deeper than a bound. Raises :class:`StrictJSONError` only; callers translate it
into their own error type.

Must not: know anything about JOSE, tokens or keys.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["StrictJSONError", "loads_object"]


class StrictJSONError(ValueError):
    """The input is not strict JSON (the message never contains the input)."""


def _reject_constant(name: str) -> Any:
    raise StrictJSONError("non-standard JSON literal")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise StrictJSONError("duplicate member name")
    return obj


_JSON_WS = " \t\r\n"  # RFC 8259 §2: the only insignificant whitespace
_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
_SCAN = _DECODER.scan_once  # type: ignore[attr-defined]  # set by JSONDecoder.__init__
# A high or low surrogate escape; only then can a lone surrogate appear.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Iteratively measure nesting depth (no recursion, so no RecursionError)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, (dict, list)))
    return False


def _check_strings(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            item.encode("utf-8")  # raises on a lone surrogate
        elif isinstance(item, dict):
            for k, v in item.items():
                k.encode("utf-8")
                stack.append(v)
        elif isinstance(item, list):
            stack.extend(item)


def loads_object(data: bytes, *, max_depth: int) -> dict[str, Any]:
    """Parse ``data`` as one strict JSON object.

    Raises :class:`StrictJSONError` for anything else, including arrays or
    scalars at the top level.
    """
    try:
        text = data.decode("utf-8")  # strict: invalid or overlong sequences raise
    except UnicodeDecodeError:
        raise StrictJSONError("not UTF-8") from None
    if text[:1] == "{":  # the common case: no leading whitespace, no byte-order mark
        start = 0
    else:
        if text.startswith("\ufeff"):
            raise StrictJSONError("byte-order mark")
        start = len(text) - len(text.lstrip(_JSON_WS))
    try:
        # The decoder's C scanner itself (raw_decode is a Python wrapper around it).
        obj, end = _SCAN(text, start)
    except StrictJSONError:
        raise
    except (StopIteration, ValueError, RecursionError):
        raise StrictJSONError("invalid JSON") from None
    if end != len(text) and text[end:].strip(_JSON_WS):
        raise StrictJSONError("trailing data after JSON")
    if type(obj) is not dict:
        kind = "an array" if type(obj) is list else "a string" if type(obj) is str else "a scalar"
        raise StrictJSONError(f"the top level is {kind}, not an object")
    # Fast bound: a document with at most max_depth containers cannot nest deeper.
    if text.count("{") + text.count("[") > max_depth and _depth_exceeds(obj, max_depth):
        raise StrictJSONError("JSON nested too deeply")
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):  # a substring test first: escapes are rare
        try:
            _check_strings(obj)
        except UnicodeEncodeError:
            raise StrictJSONError("lone surrogate in string") from None
    return obj
