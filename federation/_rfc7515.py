"""Compact JWS parsing (RFC 7515 §3.1, §4, §5.2; RFC 7519 §7.2; RFC 8725).

Owns: turning an untrusted token string into a parsed, *unverified* compact
JWS — strict base64url segments, a strict JSON header and payload, and the
header rules that do not depend on the issuer (``alg`` present, ``crit``,
``b64``, ``zip``, JWE-only parameters, nested JWTs, parameter types).

Also owns the one base64url decoder (:func:`b64url_decode`), which JWK import
uses too. :func:`parse_compact` may memoise parsed headers in a bounded dict
the caller owns and passes in; it keeps no state of its own.

Must not: choose keys, check signatures, look at claims beyond parsing them,
or touch the network. Nothing here trusts the token: everything it returns is
unverified until the caller has checked the signature.
"""

from __future__ import annotations

import binascii
import re
import sys
from dataclasses import dataclass
from typing import Any

from ._json import StrictJSONError, loads_object
from .errors import MalformedToken, TokenTooLarge
from .frozen import fast_init, record_factory

__all__ = ["CompactJWS", "Limits", "b64url_decode", "parse_compact"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource bounds enforced before expensive work (documented in docs/security.md)."""

    max_token_bytes: int = 32 * 1024
    max_header_bytes: int = 4 * 1024
    max_json_depth: int = 32
    max_claims: int = 500
    max_audiences: int = 50
    max_kid_length: int = 256


# The shape of a compact JWS: three base64url runs separated by dots. parse_compact
# refuses every string outside it without running the regex engine (tests hold it
# to this definition).
_COMPACT = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}

# Header parameters that only make sense in a JWE (RFC 7516 §4.1) or that ask
# for processing a JWT never needs: their presence means "not a plain JWS".
_JWE_ONLY = frozenset({"enc", "zip", "epk", "apu", "apv", "iv", "tag", "p2s", "p2c"})
# Known parameters with a fixed JSON type (RFC 7515 §4.1): a wrong type is malformed.
_STRING_PARAMS = ("kid", "typ", "cty", "jku", "x5u", "x5t", "x5t#S256")


def _decode_matched(segment: str) -> bytes:
    """Decode one base64url segment of a compact JWS, refusing any string
    :func:`b64url_decode` refuses: the length and canonical-bits checks, then one
    strict C decode that also validates the alphabet (so no separate pass over the
    token is needed).
    """
    # Characters of the standard alphabet and padding would pass the standard decoder.
    if "+" in segment or "/" in segment or "=" in segment:
        raise _not_base64url(segment)
    rem = len(segment) % 4
    if rem:
        # A foreign character (a space after 'Bearer', a line break) is named first: it,
        # not the length or the last character, is what the caller has to fix.
        if rem == 1:
            raise _not_base64url(segment, "segment has an impossible base64url length")
        # Canonical form: the bits past the last full byte must be zero. (A character
        # outside the alphabet maps to 0 here and is refused by the decoder below.)
        unused_mask = 0x0F if rem == 2 else 0x03
        if _INDEX.get(segment[-1], 0) & unused_mask:
            raise _not_base64url(segment, "segment is not canonical base64url")
    try:
        std = segment.encode("ascii").translate(_TO_STD) + _PADDING[rem]
        if _HAS_STRICT_MODE:
            return binascii.a2b_base64(std, strict_mode=True)  # type: ignore[call-arg]
    except (UnicodeEncodeError, binascii.Error):
        raise _not_base64url(segment) from None
    # Python 3.10 has no strict mode (the lenient decoder skips foreign characters).
    if _B64URL.fullmatch(segment) is None:
        raise _not_base64url(segment)
    return binascii.a2b_base64(std)


def _not_base64url(segment: str, otherwise: str = "") -> MalformedToken:
    """The refusal of a segment that is not canonical base64url, naming the likely mistake
    (never the segment's content): whitespace, then a foreign character, then ``otherwise``."""
    if _B64URL.fullmatch(segment) is None:
        if any(c.isspace() for c in segment):
            return MalformedToken(_WHITESPACE)
        return MalformedToken(_NOT_BASE64URL)
    return MalformedToken(otherwise or _NOT_BASE64URL)


# The public decoder's own reference to the shared tail: a wrapper installed around
# the parser's fast path (the tests count decodes that way) then never wraps it twice.
_decode_tail = _decode_matched


def b64url_decode(segment: str) -> bytes:
    """Decode one unpadded, canonical base64url segment (RFC 7515 §2).

    Rejects padding, characters outside the alphabet (which Python's decoder
    would silently drop), impossible lengths and non-zero unused bits (which
    would make two different strings decode to the same bytes).
    """
    if not _B64URL.fullmatch(segment):
        raise MalformedToken("segment is not base64url")
    return _decode_tail(segment)


_TO_STD = bytes.maketrans(b"-_", b"+/")
_HAS_STRICT_MODE = sys.version_info >= (3, 11)  # binascii.a2b_base64(strict_mode=...)
_PADDING = (b"", b"", b"==", b"=")  # by length % 4 (1 is refused before)
_NOT_BASE64URL = "token segments are empty or not base64url"
_WHITESPACE = (
    "token contains whitespace: pass the token alone, without a scheme such as 'Bearer ' or line breaks"
)
_HEADER_CACHE_SIZE = 64


@fast_init
@dataclass(frozen=True, slots=True)
class CompactJWS:
    """An unverified compact JWS, split and parsed exactly once."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes
    alg: str
    kid: str | None


_make_jws = record_factory(CompactJWS)


def _check_header(header: dict[str, Any], limits: Limits) -> tuple[str, str | None]:
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        raise MalformedToken("header 'alg' is missing or not a string")
    for name in _STRING_PARAMS:
        value = header.get(name)
        if value is not None and not isinstance(value, str):
            raise MalformedToken(f"header '{name}' is not a string")
        if value is None and name in header:
            raise MalformedToken(f"header '{name}' is null")
    kid = header.get("kid")
    if kid is not None and (not kid or len(kid) > limits.max_kid_length):
        raise MalformedToken("header 'kid' is empty or too long")
    if "jwk" in header and not isinstance(header["jwk"], dict):
        raise MalformedToken("header 'jwk' is not an object")
    if "x5c" in header and not (
        isinstance(header["x5c"], list) and all(isinstance(c, str) for c in header["x5c"])
    ):
        raise MalformedToken("header 'x5c' is not an array of strings")
    if "crit" in header:
        # RFC 7515 §4.1.11: the recipient must understand every listed extension.
        # A JWT verifier understands none (b64 in particular is refused below).
        raise MalformedToken("header carries 'crit' (critical extensions); this verifier supports none")
    if "b64" in header:
        raise MalformedToken("unencoded payloads (RFC 7797) are not accepted")
    if not _JWE_ONLY.isdisjoint(header):
        raise MalformedToken("header carries JWE-only parameters")
    cty = header.get("cty")
    if cty is not None and cty.upper() in ("JWT", "APPLICATION/JWT"):
        raise MalformedToken("nested JWTs are not accepted")
    return alg, kid


def _shape_error(token: str) -> MalformedToken:
    """Why ``token`` is not three base64url segments (the message names the likely mistake)."""
    dots = token.count(".")
    if dots == 4:
        return MalformedToken("encrypted tokens (JWE) are not accepted; expected a signed JWT")
    if dots != 2:
        return MalformedToken("token does not have three dot-separated segments")
    return MalformedToken(_NOT_BASE64URL)


def parse_compact(token: object, limits: Limits, header_cache: dict[str, Any] | None = None) -> CompactJWS:
    """Split and parse ``token``; raise :class:`MalformedToken` when it is not a
    strict compact JWS. Size is checked before any decoding."""
    if type(token) is not str:
        if isinstance(token, (bytes, bytearray)):
            if len(token) > limits.max_token_bytes:
                raise TokenTooLarge("token exceeds the size limit")
            try:
                token = bytes(token).decode("ascii")
            except UnicodeDecodeError:
                raise MalformedToken("token is not ASCII") from None
        elif not isinstance(token, str):
            raise MalformedToken("token is not a string")
    if len(token) > limits.max_token_bytes:
        raise TokenTooLarge("token exceeds the size limit")
    # The shape _COMPACT describes: two dots, header and payload not empty here, and
    # every segment in the base64url alphabet as _decode_matched decodes it (header
    # segments are cached only once decoded), so no separate pass over the token.
    h_end = token.find(".")
    p_end = token.find(".", h_end + 1)
    if h_end < 1 or p_end < h_end + 2 or token.find(".", p_end + 1) != -1:
        raise _shape_error(token)
    h_seg = token[:h_end]
    p_seg = token[h_end + 1 : p_end]
    s_seg = token[p_end + 1 :]
    if len(h_seg) > limits.max_header_bytes:
        raise TokenTooLarge("token header exceeds the size limit")
    cached = header_cache.get(h_seg) if header_cache is not None else None
    if cached is None:
        try:
            header = loads_object(_decode_matched(h_seg), max_depth=limits.max_json_depth)
        except StrictJSONError as exc:
            raise MalformedToken(f"header is not a strict JSON object ({exc})") from None
        alg, kid = _check_header(header, limits)
        if header_cache is not None:
            if len(header_cache) >= _HEADER_CACHE_SIZE:
                header_cache.clear()
            header_cache[h_seg] = (header, alg, kid)
    else:
        header, alg, kid = cached
    try:
        claims = loads_object(_decode_matched(p_seg), max_depth=limits.max_json_depth)
    except StrictJSONError as exc:
        raise MalformedToken(f"payload is not a strict JSON object ({exc})") from None
    if len(claims) > limits.max_claims:
        raise MalformedToken("payload has too many claims")
    signature = _decode_matched(s_seg)
    signing_input = token[:p_end].encode("ascii")  # decoded above: ASCII
    return _make_jws(header, claims, signing_input, signature, alg, kid)
