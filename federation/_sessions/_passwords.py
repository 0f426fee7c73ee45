"""Local password accounts: hashing, the checks on new accounts, and the lockout keys.

Owns: the argon2id parameters (RFC 9106 §4, the second recommended option:
t=3 passes, m=64 MiB, p=4 lanes, 16-byte salt, 32-byte tag; argon2-cffi's
defaults), verifying a password in the same time whether or not the
account exists (a dummy hash is verified for unknown logins), when a stored
hash needs rehashing, how a login string becomes a lookup key, and the
attempt-limiter keys (per account, per client address).

argon2-cffi is imported when local accounts are configured (the
``passwords`` extra), never by ``import federation``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, InvalidUserData
from ..storage import email_key

if TYPE_CHECKING:
    from argon2 import PasswordHasher

__all__ = ["LocalAccountPolicy", "Passwords", "account_key", "address_key", "login_key"]


@dataclass(frozen=True, slots=True)
class LocalAccountPolicy:
    """The ``local_accounts:`` knobs."""

    min_password_length: int = 12
    max_password_length: int = 1024
    max_attempts: int = 5
    lockout: float = 300
    registration: bool = True


def login_key(login: str) -> str:
    """The lookup key of a username or an email (NFKC, case-folded; an email by ``email_key``)."""
    text = unicodedata.normalize("NFKC", login).strip()
    if "@" in text:
        key = email_key(text)
        if key is not None:
            return key
    return text.casefold()


def account_key(key: str) -> str:
    """The attempt-limiter key of an account (whether it exists or not: no enumeration)."""
    return f"account:{key}"


def address_key(address: str) -> str:
    """The attempt-limiter key of a client address."""
    return f"address:{address}"


class Passwords:
    """Hashes and verifies passwords with argon2id."""

    def __init__(self, policy: LocalAccountPolicy, hasher: Any = None) -> None:
        self.policy = policy
        self._hasher: PasswordHasher = hasher if hasher is not None else _default_hasher()
        # Verified for unknown logins, so an unknown account costs what a wrong password does.
        self._dummy = self._hasher.hash("federation-bridge: no such account")

    @property
    def hasher(self) -> PasswordHasher:
        """The argon2 hasher (its parameters are the current ones)."""
        return self._hasher

    def check_new(self, password: str) -> None:
        """Refuse a password outside the configured lengths (counted in characters)."""
        if not isinstance(password, str):
            raise InvalidUserData("the password must be a string", attribute="password")
        if len(password) < self.policy.min_password_length:
            raise InvalidUserData(
                f"the password must have at least {self.policy.min_password_length} characters",
                attribute="password",
            )
        if len(password) > self.policy.max_password_length:
            raise InvalidUserData("the password is too long", attribute="password")
        if not _text(password):
            raise InvalidUserData("the password is not text (a lone surrogate)", attribute="password")

    def hash(self, password: str) -> str:
        """The PHC string of ``password`` in NFC (a fresh salt each time).

        One keyboard sends "é" composed and another as "e" and a combining accent: both
        are the same password (RFC 8265 §4.2's OpaqueString, NIST SP 800-63B §5.1.1.2).
        """
        return self._hasher.hash(unicodedata.normalize("NFC", password))

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; an absent hash verifies the dummy (same cost) and fails."""
        return self.check(password_hash, password)[0]

    def check(self, password_hash: str | None, password: str) -> tuple[bool, bool]:
        """Whether ``password`` matches (as :meth:`verify`), and whether its hash should be
        made again: of other parameters than the current ones, or made before passwords were
        normalised of a typed form that is not NFC (which then verifies only as typed)."""
        from argon2.exceptions import InvalidHashError, VerificationError

        if (
            not isinstance(password, str)
            or len(password) > self.policy.max_password_length
            or not _text(password)  # argon2 hashes UTF-8: a lone surrogate cannot be one
        ):
            password_hash, password = None, ""  # still pay for one verification, and fail
        normal = unicodedata.normalize("NFC", password)
        # A hash made before passwords were normalised is of what was typed, as typed. How
        # many verifications a wrong password costs depends on the input alone (the dummy
        # stands in for a missing account), never on whether the account exists.
        for as_typed, candidate in enumerate((normal, password) if normal != password else (normal,)):
            try:
                if self._hasher.verify(password_hash or self._dummy, candidate):
                    if password_hash is None:
                        return False, False
                    return True, bool(as_typed) or self.needs_rehash(password_hash)
            except (VerificationError, InvalidHashError):
                continue
        return False, False

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than the current ones."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except Exception:
            return True


def _text(password: str) -> bool:
    """Whether ``password`` encodes as UTF-8 (what the hash is made of)."""
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _default_hasher() -> PasswordHasher:
    try:
        from argon2 import PasswordHasher, Type
    except ImportError:
        raise ConfigError(
            "local_accounts: needs argon2-cffi: pip install 'federation-bridge[passwords]'",
            field="local_accounts",
        ) from None
    return PasswordHasher(
        time_cost=3, memory_cost=65536, parallelism=4, hash_len=32, salt_len=16, type=Type.ID
    )
