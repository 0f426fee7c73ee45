"""A fixed key set, for air-gapped deployments: keys loaded once, never fetched.

Owns: :class:`StaticKeySet`, a :class:`~federation.spi.KeySource`
built from a JWK Set (a dict or a JSON file) or from X.509 PEM certificates (a
``{kid: PEM}`` map, its JSON file, or one PEM file). Every entry goes through the
same importer as fetched keys (``_import.import_key_document``), so
every key-hygiene rule applies. A problem with the document is a
:class:`~federation.errors.ConfigError` naming the file.

Must not: perform network I/O, or accept a key the importers refuse.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from .._files import FileTooLarge, display_path, read_limited
from .._json import StrictJSONError, loads_object
from .._rfc7517 import KeyNote, KeySet, UnusableKey, VerificationKey
from ..errors import ConfigError, UnknownKey
from ..events import Event, EventSink
from ._import import import_key_document, note_event

__all__ = ["StaticKeySet"]

#: Same default bound as ``keys.max_keys``.
_MAX_KEYS = 100
#: A key file larger than this is refused before parsing (the largest keys.max_response_bytes allows).
_MAX_FILE_BYTES = 16 * 1024 * 1024


class StaticKeySet:
    """Keys fixed at start-up. An unknown kid is :class:`~federation.errors.UnknownKey`
    at once, exactly as the HTTP cache answers after a refetch."""

    def __init__(self, keyset: KeySet, *, issuer: str | None = None, notes: tuple[KeyNote, ...] = ()) -> None:
        if len(keyset) == 0:
            raise ConfigError("the static key set holds no usable key")
        self.keyset = keyset
        self.issuer = issuer
        self.notes = notes  # entries skipped or tolerated at import, reported once on refresh()
        self.on_event: EventSink | None = None
        self.last_error: str | None = None
        self._noted = False

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def from_jwks(
        cls, document: Mapping[str, Any], *, issuer: str | None = None, max_keys: int = _MAX_KEYS
    ) -> StaticKeySet:
        """From a JWK Set document (``{"keys": [...]}``)."""
        return cls._imported(dict(document), "jwks", issuer, max_keys, None)

    @classmethod
    def from_pem_map(
        cls, certificates: Mapping[str, str], *, issuer: str | None = None, max_keys: int = _MAX_KEYS
    ) -> StaticKeySet:
        """From a ``{kid: PEM certificate}`` map (Google's ``x509`` format)."""
        return cls._imported(dict(certificates), "x509_pem_map", issuer, max_keys, None)

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        format: Literal["jwks", "x509_pem_map"] = "jwks",
        issuer: str | None = None,
        max_keys: int = _MAX_KEYS,
    ) -> StaticKeySet:
        """From a JSON file: a JWK Set (``format="jwks"``) or a ``{kid: PEM}`` map."""
        text = _read(Path(path))
        try:
            document = loads_object(text.encode("utf-8"), max_depth=16)
        except StrictJSONError as exc:
            raise ConfigError(f"{path}: not a JSON object ({exc})", file=str(path)) from None
        return cls._imported(document, format, issuer, max_keys, str(path))

    @classmethod
    def from_pem_file(cls, path: str | Path, *, kid: str, issuer: str | None = None) -> StaticKeySet:
        """From one PEM certificate file; tokens must name it by ``kid``."""
        return cls._imported({kid: _read(Path(path))}, "x509_pem_map", issuer, 1, str(path))

    @classmethod
    def _imported(
        cls, document: object, fmt: str, issuer: str | None, max_keys: int, file: str | None
    ) -> StaticKeySet:
        where = f"{file}: " if file else ""
        try:
            keyset, notes = import_key_document(document, fmt, max_keys)
        except UnusableKey as exc:  # TooManyKeys included
            raise ConfigError(f"{where}unusable key document: {exc}", file=file) from None
        if len(keyset) == 0:
            details = "; ".join(str(n) for n in notes)
            raise ConfigError(f"{where}no usable key" + (f" ({details})" if details else ""), file=file)
        return cls(keyset, issuer=issuer, notes=tuple(notes))

    # -- KeySource ------------------------------------------------------------------------

    #: A static set never goes stale (read with :attr:`keyset` by the sessions layer's repeats).
    fresh_until: float = math.inf

    @property
    def keyset_cache(self) -> StaticKeySet:
        """What a repeat reads the current set from: this object (``keyset``, ``fresh_until``)."""
        return self

    def get_key(self, kid: str | None, alg: str) -> VerificationKey:
        """The key for (``kid``, ``alg``); :class:`UnknownKey` when none has the kid."""
        key = self.keyset.find(kid, alg)
        if key is None:
            raise UnknownKey("no key of the issuer has the token's kid", issuer=self.issuer)
        return key

    async def aget_key(self, kid: str | None, alg: str) -> VerificationKey:
        """Async twin of :meth:`get_key` (no I/O)."""
        return self.get_key(kid, alg)

    def refresh(self) -> bool:
        """Nothing to load; reports the import notes once. Always True."""
        if not self._noted and self.on_event is not None:
            self._noted = True
            for note in self.notes:
                try:
                    detail = {"reason": str(note), "kid": note.kid}
                    self.on_event(Event(note_event(note), self.issuer or "", detail))
                except Exception:  # noqa: S110 - a broken sink must never break start-up
                    pass
        return True

    async def arefresh(self) -> bool:
        """Async twin of :meth:`refresh`."""
        return self.refresh()


def _read(path: Path) -> str:
    shown = display_path(path)
    try:
        return read_limited(path, _MAX_FILE_BYTES).decode("utf-8")
    except FileTooLarge as exc:
        raise ConfigError(f"{shown}: key file is {exc.strerror}", file=str(path)) from None
    except FileNotFoundError:
        raise ConfigError(f"{shown}: key file not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{shown}: cannot read key file ({type(exc).__name__})", file=str(path)) from None
