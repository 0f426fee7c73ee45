"""Provisioning policy and the checks on values before they are stored.

Owns: :class:`ProvisioningPolicy` (creation, email-domain allow-list, linking
by email; built from ``provisioning:`` in the config), the email-domain test,
and :func:`check_values`, which refuses mapped values that must never reach a
user table (control characters, overlong strings, non-JSON values: MAP-08).

Must not: read or write a store, or apply a mapping.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..config import ProvisioningConfig
from ..errors import InvalidUserData

__all__ = ["ProvisioningPolicy", "check_values", "email_domain"]

# Column limits (the SQL store's column sizes; RFC 5321 for email).
MAX_USERNAME = 255
MAX_EMAIL = 254
MAX_DISPLAY_NAME = 256
MAX_ATTRIBUTE_NAME = 128
MAX_STRING = 4096
MAX_DEPTH = 8
MAX_ITEMS = 1000

_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
#: Characters that print as nothing though no category says so: Hangul fillers (Lo), the
#: braille blank (So), the combining grapheme joiner (Mn). ``admin\u3164`` reads as ``admin``.
_BLANKS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f")


def _invisible(ch: str, category: str) -> bool:
    """In a username or an email: a blank, a variation selector, a space other than U+0020."""
    code = ord(ch)
    return (
        ch in _BLANKS
        or 0xFE00 <= code <= 0xFE0F
        or 0xE0100 <= code <= 0xE01EF
        or (category == "Zs" and ch != " ")
    )


@dataclass(frozen=True, slots=True)
class ProvisioningPolicy:
    """What provisioning may do (see ``docs/provisioning.md``).

    ``allowed_email_domains`` (lower-cased) restricts creating and linking to
    users whose *verified* email is in one of the domains (exact match, no
    subdomains); None allows any.
    """

    create_users: bool = True
    allowed_email_domains: frozenset[str] | None = None
    link_by_email: bool = False
    #: A login changing nothing else writes ``last_login_at`` only when the stored one is older
    #: than this many seconds (0: always).
    touch_interval: float = 0.0

    @classmethod
    def from_config(cls, config: ProvisioningConfig) -> ProvisioningPolicy:
        """The policy of a ``provisioning:`` section."""
        domains = config.allowed_email_domains
        return cls(
            create_users=config.create_users,
            allowed_email_domains=None if domains is None else frozenset(d.lower() for d in domains),
            link_by_email=config.link_by_email,
            touch_interval=config.touch_interval,
        )

    def domain_allowed(self, email: str | None) -> bool:
        """True when no allow-list is set, or ``email``'s domain is on it."""
        if self.allowed_email_domains is None:
            return True
        domain = email_domain(email)
        return domain is not None and domain in self.allowed_email_domains


def email_domain(email: str | None) -> str | None:
    """The lower-cased domain of an address with exactly one ``@``, else None."""
    if not email or email.count("@") != 1:
        return None
    domain = email.rsplit("@", 1)[1].lower()
    return domain or None


def _bad_char(value: str, *, format_chars: bool) -> bool:
    if value.isascii() and value.isprintable():
        return False  # U+0020..U+007E only: letters, digits, punctuation, symbols, space (in C)
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cc" or category in ("Cs", "Co", "Cn", "Zl", "Zp"):  # Zl/Zp: line breaks
            return True
        if category == "Cf" and (format_chars or ch in _BIDI_CONTROLS):
            return True
        if format_chars and _invisible(ch, category):
            return True
    return False


def _refuse(name: str, why: str) -> InvalidUserData:
    return InvalidUserData(f"the mapped value of {name!r} {why}", attribute=name)


def _check_column(name: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise _refuse(name, "is not a string")
    limit = {"username": MAX_USERNAME, "email": MAX_EMAIL}.get(name, MAX_DISPLAY_NAME)
    if not value or len(value) > limit:
        raise _refuse(name, f"must be 1 to {limit} characters long")
    # usernames and emails: no invisible characters at all; names: no bidi overrides
    if _bad_char(value, format_chars=name != "display_name"):
        raise _refuse(name, "contains control or invisible characters")
    if name == "email":
        local, _, domain = value.rpartition("@")
        if not local or not domain or "@" in local or any(ch.isspace() for ch in value):
            raise _refuse(name, "is not an email address")


def _check_json(name: str, value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _refuse(name, "is nested too deeply")
    if value is None or isinstance(value, (bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _refuse(name, "is not a finite number")
        return
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise _refuse(name, f"is longer than {MAX_STRING} characters")
        if _bad_char(value, format_chars=False):
            raise _refuse(name, "contains control characters")
        return
    items: Iterable[Any]
    if isinstance(value, (list, tuple)):
        items = value
    elif isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise _refuse(name, "has a non-string key")
            _check_json(name, key, depth + 1)
        items = value.values()
    else:
        raise _refuse(name, "is not a JSON value")
    if len(value) > MAX_ITEMS:
        raise _refuse(name, f"has more than {MAX_ITEMS} items")
    for item in items:
        _check_json(name, item, depth + 1)


def check_values(columns: Mapping[str, Any], attributes: Mapping[str, Any]) -> None:
    """Refuse (:class:`~federation.errors.InvalidUserData`) values that must not be stored."""
    for name, value in columns.items():
        _check_column(name, value)
    for name, value in attributes.items():
        if not isinstance(name, str) or not name or len(name) > MAX_ATTRIBUTE_NAME:
            raise _refuse(str(name)[:MAX_ATTRIBUTE_NAME], "has an unusable attribute name")
        if _bad_char(name, format_chars=True):
            raise _refuse(name, "has control characters in its name")
        _check_json(name, value, 0)
