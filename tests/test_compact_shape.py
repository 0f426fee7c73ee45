"""parse_compact refuses every string outside the compact-JWS shape (``_COMPACT``),
and takes every string inside it past the shape checks: it checks the shape while
decoding instead of running the regex, and is held here to the regex that defines it."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from federation._rfc7515 import _COMPACT, Limits, parse_compact
from federation.errors import MalformedToken
from federation.testing import MockIdP

_IDP = MockIdP()
_GOOD = _IDP.mint(sub="shape")
_SHAPE_MESSAGES = {
    "token segments are empty or not base64url",
    "token does not have three dot-separated segments",
    "encrypted tokens (JWE) are not accepted; expected a signed JWT",
}


def _outcome(token: str) -> str | None:
    """None when parse_compact accepted the token, else the refusal's message."""
    try:
        parse_compact(token, Limits())
    except MalformedToken as exc:
        return str(exc)
    return None


def _variants() -> list[str]:
    rng = random.Random(8725)
    out = ["", ".", "..", "...", "a.b.", "a..c", ".b.c", "a.b.c", "a.b.c.d.e", _GOOD, _GOOD + ".", _GOOD[:-1]]
    h, p, s = _GOOD.split(".")
    # Every byte and a few non-ASCII characters, in each segment and around the dots.
    for code in [*range(128), 0xA0, 0xE9, 0x2028, 0xFF0E, 0x1F600]:
        ch = chr(code)
        out += [f"{ch}{h}.{p}.{s}", f"{h}.{p[:5]}{ch}{p[5:]}.{s}", f"{h}.{p}.{s}{ch}", f"{h}{ch}.{p}.{s}"]
    alphabet = "AZaz09-_.+/= \n\t%~\x00é"
    for _ in range(300):
        out.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))))
    return out


@pytest.mark.parametrize("token", _variants())
def test_shape_check_matches_the_regex(token: str) -> None:
    outcome = _outcome(token)
    if _COMPACT.fullmatch(token) is None:
        assert outcome is not None  # never accepted off the shape
    else:
        assert outcome not in _SHAPE_MESSAGES  # refused, if at all, for what the segments hold


def test_every_foreign_character_in_the_signature_is_refused() -> None:
    h, p, s = _GOOD.split(".")
    for ch in [*map(chr, range(128)), "é", "\u2028"]:
        if ch.isascii() and (ch.isalnum() or ch in "-_"):
            continue
        for at in (0, len(s) // 2, len(s)):
            assert _outcome(f"{h}.{p}.{s[:at]}{ch}{s[at:]}") is not None


def test_shape_check_also_holds_for_bytes() -> None:
    assert parse_compact(_GOOD.encode(), Limits()).claims["sub"] == "shape"
    with pytest.raises(MalformedToken, match="not base64url"):
        parse_compact(_GOOD.replace(".", ".!", 1).encode(), Limits())


def test_signing_input_is_the_first_two_segments() -> None:
    jws = parse_compact(_GOOD, Limits())
    assert jws.signing_input == _GOOD.rsplit(".", 1)[0].encode("ascii")


@pytest.mark.parametrize("strict_mode", [True, False], ids=["strict-decoder", "python-3.10-path"])
def test_both_decoder_paths_refuse_the_same_segments(
    monkeypatch: pytest.MonkeyPatch, strict_mode: bool
) -> None:
    from federation import _rfc7515

    monkeypatch.setattr(_rfc7515, "_HAS_STRICT_MODE", strict_mode)
    h, p, s = _GOOD.split(".")
    assert parse_compact(_GOOD, Limits()).claims["sub"] == "shape"
    for bad in ["!", " ", "\n", "é", "+", "/", "=", "%2B", "\x00"]:
        for token in (
            f"{h}.{p}.{s[:9]}{bad}{s[9:]}",
            f"{h}.{p[:7]}{bad}{p[7:]}.{s}",
            f"{h[:3]}{bad}{h[3:]}.{p}.{s}",
        ):
            with pytest.raises(MalformedToken):
                parse_compact(token, Limits())


@pytest.mark.parametrize(
    "mistake",
    [
        lambda t: "Bearer " + t,
        lambda t: "Bearer  " + t,
        lambda t: t[:40] + "\n" + t[40:],
        lambda t: t.replace(".", ".\r\n", 1),
        lambda t: t + " ",
        lambda t: t[:-3] + "\t" + t[-3:],
    ],
    ids=["bearer", "bearer-two-spaces", "line-break", "crlf-after-dot", "trailing-space", "tab"],
)
def test_whitespace_is_named_whatever_the_segments_length(mistake: Callable[[str], str]) -> None:
    # The length and canonical-bits checks would otherwise speak first and name the wrong fix.
    for good in (_GOOD, _IDP.mint(sub="shape", nonce="n" * 7), _IDP.mint(sub="shape2", x="yy")):
        message = _outcome(mistake(good))
        assert message is not None and message.startswith("token contains whitespace"), message
        assert "Bearer " + good not in message and good[:20] not in message


def test_a_foreign_character_is_named_before_the_length() -> None:
    h, p, s = _GOOD.split(".")
    for extra in ("!", "!!", "!!!", "é"):  # every remainder of the length modulo 4
        assert _outcome(f"{h}.{p}{extra}.{s}") == "token segments are empty or not base64url"
    assert _outcome(f"{h}.AAAAA.{s}") == "segment has an impossible base64url length"
    assert _outcome(f"{h}.AB.{s}") == "segment is not canonical base64url"
