"""Key documents to key sets: the one importer of fetched responses and of key files.

Owns: choosing the importer by format (a certificate map counted before any
certificate is parsed) and the event that reports each import note.

Must not: read configuration or perform I/O (a static key set imports it
before the configuration module may be loaded).
"""

from __future__ import annotations

from collections.abc import Mapping

from .._rfc7517 import KeyNote, KeySet, TooManyKeys, import_jwks, import_pem_map
from ..events import KEY_IGNORED, KEY_SKIPPED, KEY_TOLERATED

__all__ = ["import_key_document", "note_event"]


def import_key_document(document: object, fmt: str, max_keys: int) -> tuple[KeySet, list[KeyNote]]:
    """A key document (``jwks`` or ``x509_pem_map``) as a key set, whether fetched or read from a file.

    Raises :class:`TooManyKeys` (a certificate map is counted before any certificate is
    parsed) or :class:`UnusableKey`.
    """
    if fmt == "x509_pem_map":
        if isinstance(document, Mapping) and len(document) > max_keys:
            raise TooManyKeys(f"more than {max_keys} certificates")
        return import_pem_map(document, max_keys=max_keys)
    return import_jwks(document, max_keys=max_keys)


def note_event(note: KeyNote) -> str:
    """The event that reports an import note about one entry of a key document."""
    return {"ignored": KEY_IGNORED, "tolerated": KEY_TOLERATED}.get(note.kind, KEY_SKIPPED)
