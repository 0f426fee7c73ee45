"""Where the web layer may send a browser after login or logout (the redirect guard). Pure.

Owns: deciding whether a caller-supplied redirect target (``next=``, ``return_to=``,
a saved OAuth ``state``) is safe to put in a ``Location`` header, and the one
spelling of an origin (:func:`origin_of`) that ``web.allowed_redirects`` and
``web.public_url`` are compared in. RFC 9700 section 4.11 (open redirectors); the
oauth2-proxy advisories GHSA-qqxw-m5fj-f7gv (``/\\``), GHSA-j7px-6hwj-hpjg (encoded
whitespace), GHSA-5m6c-jp6f-2vcv and GHSA-4mf2-f3wh-gvf2 (suffix and subdomain
matching).

A target is safe when it is either

* a **relative path**: one leading ``/`` followed by anything but ``/`` or ``\\``
  (``/``, ``/a``, ``/a?b=c#d``; never ``//x``, ``/\\x``, ``/%2fx``, ``/%09/x``), with
  no ``.``/``..`` path segment; or
* an **absolute http(s) URL** whose origin (scheme, host, port; default ports
  normalised) is exactly one of the allowed origins or ``public_url``'s origin:
  no userinfo, no suffix or subdomain matching, ``http`` never matches ``https``.

Everything else goes home. The judgement is conservative, since a false refusal only
lands on the home page while a false acceptance is a vulnerability:

* values that are not ``str``, empty, or longer than 2048 characters are refused;
* the raw value must be ASCII: it is returned as is and goes into a ``Location``
  header, and browsers percent-encode legitimate non-ASCII anyway;
* the value is percent-decoded repeatedly (at most 10 rounds; a value still changing
  after that, or one whose escapes are not valid UTF-8, is refused) and **every**
  stage, raw and decoded, is judged: each must have the same shape (a relative path
  stays a relative path, an absolute URL keeps the same origin) and none may hold a
  control character (C0, DEL, C1), whitespace of any kind (ASCII space and tab,
  ``%20``, U+00A0, U+0085, U+2028, U+3000, ...), a backslash, a Unicode format
  character (U+200B, U+FEFF, ...) or an HTML character reference that could spell a
  separator (``&#47;``, ``&sol;``, ``&colon;``, ...);
* decoded non-ASCII (an already percent-encoded UTF-8 path such as ``/caf%C3%A9``) is
  accepted only for letters, marks and digits whose NFKC form holds no ASCII
  punctuation: fullwidth solidus, reverse solidus, full stop, commercial at and colon
  (U+FF0F, U+FF3C, U+FF0E, U+FF20, U+FF1A), the ideographic full stop U+3002,
  division and fraction slashes, punctuation and symbols in general, and the vertical
  kana repeat marks U+3031..U+3035 are refused;
* hosts are compared after lowercasing and IDNA encoding; a trailing dot, an
  underscore, an empty label, a zone id, a numeric host that is not a canonical
  dotted quad, and a port that is empty, zero, non-decimal or above 65535 are refused.

Must not: resolve names, open sockets, or import anything outside the standard library.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

__all__ = ["MAX_TARGET_LENGTH", "RedirectPolicy", "origin_of"]

MAX_TARGET_LENGTH = 2048
"""Longer values are refused outright."""

_MAX_DECODE_ROUNDS = 10
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEME_PREFIX = re.compile(r"(?i)(https?)://")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PORT = re.compile(r"[0-9]{1,5}")
# HTML character references that could spell a separator once a target lands in an
# attribute (defence in depth: templates escape ``&`` anyway). Numeric ones always.
_CHAR_REFERENCE = re.compile(
    r"&(?:#|(?:sol|bsol|colon|period|commat|tab|newline|nbsp|num|quest|percnt|dot|fullstop);)",
    re.IGNORECASE,
)
# Non-ASCII letters that some URL parsers have treated as separators, and the IDNA
# deviation characters whose mapping differs between IDNA 2003 (Python) and UTS 46
# (browsers): "faß.example" is fass.example here but xn--fa-hia.example in Chromium.
_REFUSED_LETTERS = frozenset("\u3031\u3032\u3033\u3034\u3035\u00df\u03c2")


def _char_refused(ch: str) -> bool:
    """A character no stage of a target (and no part of an origin) may hold."""
    code = ord(ch)
    if code < 0x80:
        return code < 0x21 or code == 0x7F or ch == "\\"
    if ch in _REFUSED_LETTERS or unicodedata.category(ch)[0] not in "LMN":
        return True  # controls, format, whitespace, separators, punctuation, symbols
    for folded in unicodedata.normalize("NFKC", ch):
        if ord(folded) < 0x80:
            if not folded.isalnum():
                return True  # fullwidth solidus, small commercial at, ...
        elif folded in _REFUSED_LETTERS or unicodedata.category(folded)[0] not in "LMN":
            return True
    return False


def _stage_refused(stage: str) -> bool:
    return any(_char_refused(ch) for ch in stage) or _CHAR_REFERENCE.search(stage) is not None


def _stages(value: str) -> list[str] | None:
    """The raw value and each percent-decoded form until stable, or None (never stable, bad UTF-8)."""
    stages = [value]
    current = value
    for _ in range(_MAX_DECODE_ROUNDS):
        if "%" not in current:
            return stages
        try:
            decoded = unquote(current, errors="strict")
        except UnicodeDecodeError:
            return None
        if decoded == current:
            return stages
        stages.append(decoded)
        current = decoded
    return None


def _normal_host(host: str) -> str | None:
    """The host as compared: lowercase, IDNA, IPv6 compressed in brackets; None when malformed."""
    if host.startswith("["):
        if not host.endswith("]") or "%" in host:
            return None  # unbalanced bracket, zone id
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            return None
    if not host or host.endswith(".") or any(_char_refused(ch) for ch in host):
        return None
    host = host.lower()
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            return None
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    last = labels[-1]
    if last.isdigit() or last.startswith("0x"):
        # The URL standard reads such a host as an IPv4 address (0x7f.1, 2130706433, 1.2.3.4.5):
        # only the canonical dotted quad is compared, never another spelling of it.
        try:
            canonical = str(ipaddress.IPv4Address(host))
        except ValueError:
            return None
        return host if canonical == host else None
    return host


def _split_origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an absolute http(s) URL with a host and no userinfo, else None."""
    if not url or len(url) > MAX_TARGET_LENGTH or any(_char_refused(ch) for ch in url):
        return None
    prefix = _SCHEME_PREFIX.match(url)
    if prefix is None:
        return None  # https:evil.com, https:/evil.com, //evil.com, javascript:...
    scheme = prefix.group(1).lower()
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return None
    if not netloc or "@" in netloc or url[prefix.end() : prefix.end() + len(netloc)] != netloc:
        return None
    if netloc.startswith("["):
        close = netloc.find("]")
        if close < 0:
            return None
        host_text, rest = netloc[: close + 1], netloc[close + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else None
    else:
        host_text, colon, port_text_or_empty = netloc.partition(":")
        port_text = port_text_or_empty if colon else None
    host = _normal_host(host_text)
    if host is None:
        return None
    if port_text is None:
        port = _DEFAULT_PORTS[scheme]
    else:
        if _PORT.fullmatch(port_text) is None:
            return None  # empty, ":abc", ":1:2", a sign, non-ASCII digits
        port = int(port_text)
        if not 0 < port <= 65535:
            return None
    return scheme, host, port


def _format_origin(scheme: str, host: str, port: int) -> str:
    if port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def origin_of(url: str) -> str | None:
    """'scheme://host[:port]' normalised (lowercase scheme and host, IDNA host, default port dropped),
    or None when url is not an absolute http(s) URL with a host and no userinfo.

    Strict like the rest of the guard: control characters, whitespace, backslashes, a
    trailing dot on the host, punctuation-like non-ASCII in the host and malformed ports
    give None. Never raises.
    """
    if not isinstance(url, str):
        return None  # type: ignore[unreachable]  # callers outside mypy's reach
    parts = _split_origin(url)
    return None if parts is None else _format_origin(*parts)


def _relative_shape_ok(stage: str) -> bool:
    """One leading slash, then not a slash or backslash; no dot segment in the path."""
    if not stage.startswith("/") or stage[1:2] in ("/", "\\"):
        return False
    path = stage.split("?", 1)[0].split("#", 1)[0]
    return not any(segment in (".", "..") for segment in path.split("/"))


def _bare_origin(text: object) -> str:
    """The normalised origin of an allowed_origins entry, or ValueError when it is not a bare origin."""
    if not isinstance(text, str):
        raise TypeError(f"an allowed redirect origin must be a string, not {type(text).__name__}")
    origin = origin_of(text)
    if origin is None or "?" in text or "#" in text:
        raise ValueError(
            f"allowed redirect origin {text!r} is not a bare http(s) origin 'scheme://host[:port]'"
            " (no userinfo, wildcard or trailing dot)"
        )
    if urlsplit(text).path not in ("", "/"):
        raise ValueError(f"allowed redirect origin {text!r} has a path; give only 'scheme://host[:port]'")
    return origin


class RedirectPolicy:
    """The redirect targets the web layer accepts: relative paths and a fixed set of origins.

    ``allowed_origins`` are exact origins (scheme, host, port) an absolute redirect may
    name (``web.allowed_redirects``); ``public_url``'s origin is allowed too. An allowed
    origin that is not a bare origin (a path, query, userinfo, wildcard, non-http(s)
    scheme) and a ``home`` that is not itself safe raise ValueError.
    """

    __slots__ = ("_home", "_origins")

    def __init__(
        self, *, home: str = "/", public_url: str | None = None, allowed_origins: Iterable[str] = ()
    ) -> None:
        if isinstance(allowed_origins, str):
            raise TypeError("allowed_origins must be an iterable of origins, not a single string")
        origins = {_bare_origin(entry) for entry in allowed_origins}
        if public_url is not None:
            public_origin = origin_of(public_url)
            if public_origin is None:
                raise ValueError(f"public_url {public_url!r} is not an absolute http(s) URL")
            origins.add(public_origin)
        self._origins = frozenset(origins)
        self._home = home
        if not self.is_safe(home):
            raise ValueError(f"home {home!r} is not a safe redirect target")

    @property
    def home(self) -> str:
        """Where refused targets go."""
        return self._home

    @property
    def allowed_origins(self) -> frozenset[str]:
        """The normalised origins an absolute target may name (``public_url``'s included)."""
        return self._origins

    def target(self, value: str | None) -> str:
        """The URL to redirect to: value when it is safe, else home."""
        return value if value is not None and self.is_safe(value) else self._home

    def is_safe(self, value: str | None) -> bool:
        """Whether value may be redirected to as is. Never raises."""
        if not isinstance(value, str) or not value or len(value) > MAX_TARGET_LENGTH or not value.isascii():
            return False
        stages = _stages(value)
        if stages is None or any(_stage_refused(stage) for stage in stages):
            return False
        if value.startswith("/"):
            return all(_relative_shape_ok(stage) for stage in stages)
        parts = _split_origin(value)
        if parts is None or _format_origin(*parts) not in self._origins:
            return False
        return all(_split_origin(stage) == parts for stage in stages[1:])

    def __repr__(self) -> str:
        return f"RedirectPolicy(home={self._home!r}, allowed_origins={sorted(self._origins)!r})"
