"""Templates: strings with claim placeholders, such as ``"{given_name} {family_name}"``.

Owns: the template syntax and rendering. A placeholder is ``{path}`` where
path is a claim path (``{sub}``, ``{address.country}``, ``{$email}``,
``{https://example.com/tenant}``); ``{{`` and ``}}`` are literal braces.
Rendering substitutes values as text (strings as they are, integers and
numbers in JSON form, booleans as ``true``/``false``). A template whose
placeholder is absent, or is a list or an object, does not render: the result
says which placeholder and why.

This is deliberately not ``str.format``: nothing but claim values can be
reached (no attribute access, no indexing into Python objects, no format
specs), and values are never re-parsed.

Must not: evaluate anything but claim paths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._paths import MISSING, ClaimPath, Context, PathError, kind_of, parse_path

__all__ = ["Template", "TemplateError", "is_template", "parse_template", "scalar_text"]

MAX_PLACEHOLDERS = 20


class TemplateError(ValueError):
    """A template that cannot be parsed (the message says why)."""


def is_template(text: str) -> bool:
    """Whether a ``from:`` entry is a template (it contains a brace) rather than a path."""
    return "{" in text or "}" in text


def scalar_text(value: object) -> str | None:
    """A JSON scalar as template text; None for lists, objects and absent values."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # more digits than Python converts (sys.set_int_max_str_digits)
            return None
    if isinstance(value, float):
        # '1e999' parses to infinity, which has no JSON form: as absent, like an object.
        return repr(value) if math.isfinite(value) else None
    return None


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: literal parts and placeholders, alternating."""

    text: str
    parts: tuple[str | ClaimPath, ...]

    @property
    def paths(self) -> tuple[ClaimPath, ...]:
        return tuple(p for p in self.parts if isinstance(p, ClaimPath))

    def render(self, ctx: Context) -> tuple[str | None, str]:
        """``(text, "")`` or ``(None, reason)``."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = part.resolve(ctx)
            if value is MISSING:
                return None, f"placeholder {{{part.text}}} is absent"
            text = scalar_text(value)
            if text is None:
                return None, f"placeholder {{{part.text}}} is {kind_of(value)}, not a single value"
            out.append(text)
        return "".join(out), ""


def parse_template(text: str) -> Template:
    """Parse ``text``; raise :class:`TemplateError` with the reason."""
    parts: list[str | ClaimPath] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "{":
            if text.startswith("{{", i):
                literal.append("{")
                i += 2
                continue
            close = text.find("}", i + 1)
            if close < 0:
                raise TemplateError(f"unclosed '{{' at position {i} (write '{{{{' for a brace)")
            inner = text[i + 1 : close]
            if "{" in inner:
                raise TemplateError(f"'{{' inside a placeholder at position {i}")
            try:
                path = parse_path(inner.strip())
            except PathError as exc:
                raise TemplateError(f"placeholder {{{inner}}}: {exc}") from None
            if literal:
                parts.append("".join(literal))
                literal.clear()
            parts.append(path)
            i = close + 1
            continue
        if ch == "}":
            if text.startswith("}}", i):
                literal.append("}")
                i += 2
                continue
            raise TemplateError(f"single '}}' at position {i} (write '}}}}' for a brace)")
        literal.append(ch)
        i += 1
    if literal:
        parts.append("".join(literal))
    if sum(isinstance(p, ClaimPath) for p in parts) > MAX_PLACEHOLDERS:
        raise TemplateError(f"more than {MAX_PLACEHOLDERS} placeholders")
    return Template(text, tuple(parts))
