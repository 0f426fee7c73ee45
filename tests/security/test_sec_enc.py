"""ENC-*: compact serialisation and base64url (catalogue: docs/security.md).

Catalogue class -> ours: MalformedToken -> MalformedToken (``malformed``);
NotAJWS -> MalformedToken (``malformed``, message names JWE); TokenTooLarge ->
TokenTooLarge (``token_too_large``, a MalformedToken subclass);
InvalidSignature -> BadSignature (``bad_signature``).
Rows marked NO-IO use a fresh bridge and assert that no request was made.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from security_support import (
    DecodeRecorder,
    Net,
    b64u,
    base_claims,
    expect_reject,
    hdr,
    jdump,
    raw_token,
    signed,
)

from federation import Bridge
from federation._rfc7515 import _INDEX, Limits, parse_compact
from federation.errors import BadSignature, MalformedToken, TokenTooLarge
from federation.testing import MockIdP

Fresh = Callable[..., Bridge]


@pytest.fixture
def good(idp: MockIdP) -> str:
    rs = idp.key_for("RS256")
    return signed(hdr(rs), base_claims(idp), rs)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> DecodeRecorder:
    recorder = DecodeRecorder()
    monkeypatch.setattr("federation._rfc7515.b64url_decode", recorder)
    monkeypatch.setattr("federation._rfc7515._decode_matched", recorder)  # the parser's fast path
    return recorder


def _malformed_no_io(fresh: Fresh, net: Net, token: object) -> None:
    bridge = fresh()
    expect_reject(lambda: bridge.verify(token), MalformedToken, "malformed")  # type: ignore[arg-type]
    assert net.requests == []


def test_enc_control_good_token_verifies(fresh: Fresh, good: str) -> None:
    """Control: the untampered base token is accepted (every row below changes one thing)."""
    assert fresh().verify(good).subject == "u-1"


@pytest.mark.parametrize("token", ["", " ", "\n", "\t", "\r\n"], ids=repr)
def test_enc_01_empty_or_whitespace_token(fresh: Fresh, net: Net, token: str) -> None:
    _malformed_no_io(fresh, net, token)


@pytest.mark.parametrize(
    "token", ["a", "a.b", "a.b.c.d", "a.b.c.", "..", "....", "a.b.c.d.e.f", "eyJ.eyJ"], ids=repr
)
def test_enc_02_wrong_segment_count(fresh: Fresh, net: Net, decodes: DecodeRecorder, token: str) -> None:
    _malformed_no_io(fresh, net, token)
    assert decodes.calls == 0


def test_enc_02_five_segments_is_refused_as_not_a_jws(
    fresh: Fresh, net: Net, good: str, decodes: DecodeRecorder
) -> None:
    """Catalogue NotAJWS -> our MalformedToken, decided by the dot count before any decoding."""
    jwe_shaped = good + ".AAAA.BBBB"
    _malformed_no_io(fresh, net, jwe_shaped)
    assert decodes.calls == 0


def test_enc_03_empty_signature_with_a_real_alg(fresh: Fresh, idp: MockIdP) -> None:
    rs = idp.key_for("RS256")
    token = raw_token(hdr(rs), base_claims(idp))  # "h.p."
    assert token.endswith(".")
    expect_reject(lambda: fresh().verify(token), BadSignature, "bad_signature")


@pytest.mark.parametrize("where", ["header", "payload", "both"])
def test_enc_04_missing_header_or_payload_segment(fresh: Fresh, net: Net, good: str, where: str) -> None:
    h, p, s = good.split(".")
    token = {"header": f".{p}.{s}", "payload": f"{h}..{s}", "both": f".{p}."}[where]
    _malformed_no_io(fresh, net, token)


def _whitespace_variants(token: str) -> list[str]:
    h, p, s = token.split(".")
    return [
        " " + token,
        token + " ",
        token + "\n",
        "\t" + token,
        token + "\r\n",
        f"{h} .{p}.{s}",
        f"{h}.{p}.    {s}",
        f"{h}.{p[:5]} {p[5:]}.{s}",
        f"{h}.{p}.{s[:10]}\n{s[10:]}",
        f"{h[:4]}\r\n{h[4:]}.{p}.{s}",
    ]


def test_enc_05_whitespace_inside_or_around_segments(fresh: Fresh, net: Net, good: str) -> None:
    bridge = fresh()
    for token in _whitespace_variants(good):
        expect_reject(lambda t=token: bridge.verify(t), MalformedToken, "malformed")
    assert net.requests == []


@pytest.mark.parametrize("char", ["?", "#", "+", "/", "%", "{", '"', "é", "\x00", "=", "~", "*", "\u200b"])
@pytest.mark.parametrize("segment", [0, 1, 2])
def test_enc_06_characters_outside_the_base64url_alphabet(
    fresh: Fresh, net: Net, good: str, char: str, segment: int
) -> None:
    parts = good.split(".")
    parts[segment] = parts[segment][:7] + char + parts[segment][7:]
    _malformed_no_io(fresh, net, ".".join(parts))


def test_enc_06_non_ascii_bytes_token(fresh: Fresh, net: Net, good: str) -> None:
    _malformed_no_io(fresh, net, good.encode() + b"\xff")


@pytest.mark.parametrize("pad", ["=", "=="])
@pytest.mark.parametrize("segment", [0, 1, 2])
def test_enc_07_padding_characters(fresh: Fresh, net: Net, good: str, pad: str, segment: int) -> None:
    parts = good.split(".")
    parts[segment] += pad
    _malformed_no_io(fresh, net, ".".join(parts))


def _set_unused_bits(segment: str) -> str:
    """Same decoded bytes under a lenient decoder, different text: flip an unused low bit."""
    rem = len(segment) % 4
    assert rem in (2, 3), "needs a segment whose last character carries unused bits"
    last = _INDEX[segment[-1]]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return segment[:-1] + alphabet[last | 1]


def test_enc_08_non_canonical_base64url_signature(fresh: Fresh, net: Net, good: str) -> None:
    h, p, s = good.split(".")
    assert len(s) % 4 == 2  # 256-byte RSA signature: 4 unused bits
    tampered = f"{h}.{p}.{_set_unused_bits(s)}"
    import base64

    lenient = base64.urlsafe_b64decode(tampered.split(".")[2] + "==")
    assert lenient == base64.urlsafe_b64decode(s + "==")  # the malleability the row is about
    _malformed_no_io(fresh, net, tampered)


def test_enc_08_non_canonical_payload_ab_instead_of_aa(fresh: Fresh, net: Net, good: str) -> None:
    h, _p, s = good.split(".")
    _malformed_no_io(fresh, net, f"{h}.AB.{s}")


@pytest.mark.parametrize("segment", [0, 1, 2])
def test_enc_09_impossible_base64_length(fresh: Fresh, net: Net, good: str, segment: int) -> None:
    parts = good.split(".")
    while len(parts[segment]) % 4 != 1:
        parts[segment] += "A"
    _malformed_no_io(fresh, net, ".".join(parts))


_HEADER = '{"alg":"RS256","kid":"%s","typ":"JWT"}'


def _encodings(text: str) -> dict[str, bytes]:
    return {
        "utf16-bom": b"\xff\xfe" + text.encode("utf-16-le"),
        "utf16le": text.encode("utf-16-le"),
        "utf16be": text.encode("utf-16-be"),
        "utf32": text.encode("utf-32"),
        "utf8-bom": b"\xef\xbb\xbf" + text.encode(),
        "overlong": text.replace('"typ"', '"\xc0\xafyp"').encode("latin-1"),
        "bad-continuation": text.replace('"JWT"', '"JW\x80"').encode("latin-1"),
        "latin1": text.replace('"JWT"', '"JWÉ"').encode("latin-1"),
    }


@pytest.mark.parametrize("variant", list(_encodings("{}")))
def test_enc_10_header_not_utf8(fresh: Fresh, net: Net, idp: MockIdP, variant: str) -> None:
    rs = idp.key_for("RS256")
    header = _encodings(_HEADER % rs.kid)[variant]
    _malformed_no_io(fresh, net, signed(header, base_claims(idp), rs))


@pytest.mark.parametrize("variant", list(_encodings("{}")))
def test_enc_10_payload_not_utf8(fresh: Fresh, net: Net, idp: MockIdP, variant: str) -> None:
    rs = idp.key_for("RS256")
    claims = json.dumps(base_claims(idp, typ="JWT"))
    _malformed_no_io(fresh, net, signed(hdr(rs), _encodings(claims)[variant], rs))


def test_enc_11_json_serialisation_is_not_accepted(fresh: Fresh, net: Net, good: str) -> None:
    h, p, s = good.split(".")
    general = json.dumps({"payload": p, "signatures": [{"protected": h, "header": {}, "signature": s}]})
    flattened = json.dumps({"payload": p, "protected": h, "signature": s})
    for token in (general, flattened, general.encode(), " " + flattened):
        _malformed_no_io(fresh, net, token)


def test_enc_12_compact_json_polyglots(fresh: Fresh, net: Net, good: str) -> None:
    h, p, s = good.split(".")
    polyglots = [
        # CVE-2022-39227: a JSON JWS carrying a compact token as a member name.
        json.dumps({f"{h}.{p}.": "", "protected": h, "payload": p, "signature": s}),
        json.dumps({"payload": f"{p}.{p}", "protected": f"{h}.x", "signature": s}),
        good + json.dumps({"payload": p}),
        json.dumps({"payload": p}) + good,
        f'{h}.{{"payload":"{p}"}}.{s}',
    ]
    for token in polyglots:
        _malformed_no_io(fresh, net, token)


def test_enc_12_signature_and_claims_come_from_one_parse(good: str) -> None:
    """What is verified (signing input) and what is returned (claims) come from the same text."""
    jws = parse_compact(good, Limits())
    h, p, _s = good.split(".")
    assert jws.signing_input == f"{h}.{p}".encode()
    assert jws.claims == json.loads(__import__("base64").urlsafe_b64decode(p + "=="))


def test_enc_13_transport_wrappers_are_not_stripped(fresh: Fresh, net: Net, good: str) -> None:
    for token in (
        "Bearer " + good,
        "bearer " + good,
        '"' + good + '"',
        "'" + good + "'",
        good.replace(".", "%2E"),
        good.replace(".", "%2e", 1),
        ("Bearer " + good).encode(),
    ):
        _malformed_no_io(fresh, net, token)


@pytest.mark.parametrize("size", [1024 * 1024, 10 * 1024 * 1024], ids=["1MiB", "10MiB"])
def test_enc_14_oversized_token_rejected_before_decoding(
    fresh: Fresh, net: Net, good: str, decodes: DecodeRecorder, size: int
) -> None:
    h, p, s = good.split(".")
    token = f"{h}.{p}.{s}" + "A" * (size - len(good))
    bridge = fresh()
    expect_reject(lambda: bridge.verify(token), TokenTooLarge, "token_too_large")
    expect_reject(lambda: bridge.verify(token.encode()), TokenTooLarge, "token_too_large")
    assert decodes.calls == 0
    assert net.requests == []


def test_enc_14_one_mebibyte_header_or_signature(
    fresh: Fresh, net: Net, good: str, decodes: DecodeRecorder
) -> None:
    h, p, s = good.split(".")
    mib = 1024 * 1024
    bridge = fresh()
    for token in (f"{'A' * mib}.{p}.{s}", f"{h}.{p}.{'A' * mib}", f"{h}.{'A' * mib}.{s}"):
        expect_reject(lambda t=token: bridge.verify(t), TokenTooLarge, "token_too_large")
    assert decodes.calls == 0
    assert net.requests == []


def test_enc_14_header_cap_within_the_token_cap(
    fresh: Fresh, net: Net, idp: MockIdP, decodes: DecodeRecorder
) -> None:
    """A 6 KiB header inside a token under 32 KiB: refused by the 4 KiB header cap, undecoded."""
    rs = idp.key_for("RS256")
    token = signed(hdr(rs, pad="x" * 6000), base_claims(idp), rs)
    assert len(token) < Limits().max_token_bytes
    bridge = fresh()
    expect_reject(lambda: bridge.verify(token), TokenTooLarge, "token_too_large")
    assert decodes.calls == 0
    assert net.requests == []


def test_enc_14_size_limit_is_configurable_and_exact(fresh: Fresh, net: Net, good: str, idp: MockIdP) -> None:
    small = fresh(top={"limits": {"max_token_bytes": 256}})
    expect_reject(lambda: small.verify(good), TokenTooLarge, "token_too_large")
    exact = fresh(top={"limits": {"max_token_bytes": len(good)}})
    assert exact.verify(good).subject == "u-1"  # the limit is inclusive


def test_enc_15_dot_flood(fresh: Fresh, net: Net, decodes: DecodeRecorder) -> None:
    bridge = fresh()
    expect_reject(lambda: bridge.verify("a" + "." * 1_000_000), TokenTooLarge, "token_too_large")
    expect_reject(lambda: bridge.verify("a" + "." * 30_000), MalformedToken, "malformed")
    expect_reject(lambda: bridge.verify("a.b.c" + "." * 30_000), MalformedToken, "malformed")
    assert decodes.calls == 0
    assert net.requests == []


def test_enc_15_dot_flood_under_the_largest_allowed_cap(
    fresh: Fresh, net: Net, decodes: DecodeRecorder
) -> None:
    """With the cap raised to its 1 MiB maximum, a 1 MiB dot flood is still refused undecoded."""
    bridge = fresh(top={"limits": {"max_token_bytes": 1024 * 1024}})
    flood = "a" + "." * (1024 * 1024 - 1)
    expect_reject(lambda: bridge.verify(flood), MalformedToken, "malformed")
    assert not isinstance(_raised(bridge, flood), TokenTooLarge)
    assert decodes.calls == 0
    assert net.requests == []


def _raised(bridge: Bridge, token: str) -> BaseException:
    try:
        bridge.verify(token)
    except Exception as exc:
        return exc
    raise AssertionError("accepted")


def test_enc_helpers_build_what_they_say() -> None:
    """Guard for the raw builders used above (base64url without padding)."""
    assert b64u(b"\xfb\xff") == "-_8"
    assert raw_token(b"{}", jdump({"a": 1})) == "e30.eyJhIjoxfQ."
