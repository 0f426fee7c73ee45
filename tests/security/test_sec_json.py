"""JSON-*: header and payload parsing (catalogue: docs/security.md).

Tokens are built from raw bytes and correctly signed by the issuer's key, so
the JSON defect is the only reason for rejection. Catalogue MalformedToken ->
MalformedToken (``malformed``); InvalidClaim -> InvalidClaim (``invalid_claim``);
the JSON-12 audience bound -> InvalidAudience (``invalid_audience``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import pytest
from security_support import DecodeRecorder, Net, base_claims, expect_reject, hdr, jdump, signed

from federation import Bridge
from federation.errors import InvalidAudience, InvalidClaim, MalformedToken, TokenTooLarge
from federation.testing import MockIdP, SigningKey

Fresh = Callable[..., Bridge]


@pytest.fixture
def rs(idp: MockIdP) -> SigningKey:
    return idp.key_for("RS256")


def _claims_text(idp: MockIdP, **changes: object) -> str:
    """BASE_CLAIMS as JSON text without the closing brace (to append raw members)."""
    return json.dumps(base_claims(idp, **changes), separators=(",", ":"))[:-1]


def _malformed(bridge: Bridge, net: Net, token: str) -> None:
    expect_reject(lambda: bridge.verify(token), MalformedToken, "malformed")
    assert net.requests == []  # parse errors never reach key lookup


@pytest.mark.parametrize("header", [b"[]", b'"x"', b"1", b"null", b"true", b"", b'["alg","RS256"]'], ids=repr)
def test_json_01_header_is_not_an_object(
    fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey, header: bytes
) -> None:
    _malformed(fresh(), net, signed(header, base_claims(idp), rs))


@pytest.mark.parametrize("payload", [b"[]", b'"sub"', b"123", b"null", b"", b"true"], ids=repr)
def test_json_02_payload_is_not_an_object(fresh: Fresh, net: Net, rs: SigningKey, payload: bytes) -> None:
    _malformed(fresh(), net, signed(hdr(rs), payload, rs))


def test_json_03_duplicate_header_members(fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey) -> None:
    bridge = fresh()
    headers = [
        b'{"alg":"RS256","kid":"%s","alg":"none"}' % rs.kid.encode(),
        b'{"alg":"none","kid":"%s","alg":"RS256"}' % rs.kid.encode(),
        b'{"alg":"RS256","kid":"%s","kid":"b-rsa"}' % rs.kid.encode(),
        b'{"alg":"RS256","kid":"b-rsa","kid":"%s"}' % rs.kid.encode(),
    ]
    for header in headers:
        _malformed(bridge, net, signed(header, base_claims(idp), rs))


@pytest.mark.parametrize(
    "member", ['"sub":"attacker"', '"iss":"https://evil.test"', '"aud":"x"', '"exp":1', '"email":"b@x"']
)
def test_json_04_duplicate_claims(fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey, member: str) -> None:
    payload = (_claims_text(idp, email="a@x") + "," + member + "}").encode()
    _malformed(fresh(), net, signed(hdr(rs), payload, rs))


def test_json_05_duplicates_hidden_by_escapes(fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey) -> None:
    bridge = fresh()
    header = b'{"alg":"RS256","kid":"%s","\\u0061lg":"none"}' % rs.kid.encode()
    _malformed(bridge, net, signed(header, base_claims(idp), rs))
    payload = (_claims_text(idp) + ',"s\\u0075b":"b"}').encode()
    _malformed(bridge, net, signed(hdr(rs), payload, rs))


@pytest.mark.parametrize(
    "raw",
    [
        '"exp":NaN',
        '"exp":Infinity',
        '"exp":-Infinity',
        '"x":1,',
        '"x":1 // comment',
        '"x":1 /* c */',
        "'x':1",
        "x:1",
        '"x":01800000000',
        '"x":0x1',
        '"x":+1',
        '"x":.5',
        '"x":1.',
        '"x":True',
        '"x":undefined',
        '"x":"\t"',
    ],
)
def test_json_06_non_standard_json_literals(
    fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey, raw: str
) -> None:
    claims = base_claims(idp)
    claims.pop("exp") if raw.startswith('"exp"') else None
    body = json.dumps(claims, separators=(",", ":"))[:-1] + "," + raw + "}"
    _malformed(fresh(), net, signed(hdr(rs), body.encode(), rs))


@pytest.mark.parametrize("trailer", [b" x", b"{}", b"\x00", b"]", b" 1", b"\n{"], ids=repr)
def test_json_07_trailing_data(fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey, trailer: bytes) -> None:
    bridge = fresh()
    _malformed(bridge, net, signed(jdump(hdr(rs)) + trailer, base_claims(idp), rs))
    _malformed(bridge, net, signed(hdr(rs), jdump(base_claims(idp)) + trailer, rs))


def test_json_07_insignificant_whitespace_is_fine(fresh: Fresh, idp: MockIdP, rs: SigningKey) -> None:
    """Control for JSON-07: RFC 8259 whitespace around the value is not trailing data."""
    token = signed(b" \r\n" + jdump(hdr(rs)) + b"\t\n ", b"\n" + jdump(base_claims(idp)) + b" ", rs)
    assert fresh().verify(token).subject == "u-1"


def test_json_08_deep_nesting_under_a_large_size_cap(
    fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey
) -> None:
    """100 000 brackets fit under the 1 MiB maximum cap; rejected with no RecursionError."""
    bridge = fresh(top={"limits": {"max_token_bytes": 1024 * 1024}})
    for opener, closer in (("[", "]"), ('{"a":', "}")):
        depth = 100_000 if opener == "[" else 60_000
        body = _claims_text(idp) + ',"x":' + opener * depth + "1" + closer * depth + "}"
        _malformed(bridge, net, signed(hdr(rs), body.encode(), rs))
    header = b'{"alg":"RS256","x":' + b"[" * 1000 + b"]" * 1000 + b"}"
    _malformed(bridge, net, signed(header, base_claims(idp), rs))


def test_json_08_depth_limit_is_exact(fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey) -> None:
    """max_json_depth (32): the claims object plus 31 nested arrays passes, 32 fails."""
    bridge = fresh()
    ok = _claims_text(idp) + ',"x":' + "[" * 31 + "]" * 31 + "}"
    assert bridge.verify(signed(hdr(rs), ok.encode(), rs)).subject == "u-1"
    deep = _claims_text(idp) + ',"x":' + "[" * 32 + "]" * 32 + "}"
    net.requests.clear()
    _malformed(fresh(), net, signed(hdr(rs), deep.encode(), rs))


def test_json_09_huge_integers(fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey) -> None:
    """Pinned: never a ValueError. Under CPython's int-to-str digit limit a huge ``exp`` parses and
    is out of range (InvalidClaim); above it the strict JSON parser refuses the document (MalformedToken)."""
    bridge = fresh()
    claims = base_claims(idp)
    claims.pop("exp")
    head = json.dumps(claims, separators=(",", ":"))[:-1]
    under = signed(hdr(rs), (head + ',"exp":1' + "0" * 4000 + "}").encode(), rs)
    err = expect_reject(lambda: bridge.verify(under), InvalidClaim, "invalid_claim")
    assert err.claim == "exp"
    over = signed(hdr(rs), (head + ',"exp":1' + "0" * 5000 + "}").encode(), rs)
    limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 0
    if limit and limit < 5001:
        expect_reject(lambda: bridge.verify(over), MalformedToken, "malformed")
    else:  # interpreter without the limit (or limit lifted by the application)
        expect_reject(lambda: bridge.verify(over), InvalidClaim, "invalid_claim")


@pytest.mark.parametrize("claim", ["iat", "exp", "nbf"])
@pytest.mark.parametrize("value", ["-1e400", "1e400", "1e308"])
def test_json_09_overflowing_floats(
    fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey, claim: str, value: str
) -> None:
    claims = base_claims(idp)
    claims.pop(claim)
    body = json.dumps(claims, separators=(",", ":"))[:-1] + f',"{claim}":{value}}}'
    err = expect_reject(lambda: fresh().verify(signed(hdr(rs), body.encode(), rs)), InvalidClaim)
    assert err.claim == claim


def test_json_10_nul_in_sub_is_refused(fresh: Fresh, idp: MockIdP, rs: SigningKey) -> None:
    """Pinned (stricter than the catalogue): control characters in ``sub`` are an invalid claim."""
    token = signed(hdr(rs), base_claims(idp, sub="u-1\u0000admin"), rs)
    assert expect_reject(lambda: fresh().verify(token), InvalidClaim, "invalid_claim").claim == "sub"


def test_json_10_control_characters_in_other_claims_are_kept_exactly(
    fresh: Fresh, idp: MockIdP, rs: SigningKey
) -> None:
    """Other claims are returned byte for byte: never cut at NUL, never normalised."""
    email = "a@b.c\r\nX-Injected: 1"
    name = "x\u0000y\u001b[2J"
    vt = fresh().verify(signed(hdr(rs), base_claims(idp, email=email, name=name), rs))
    assert vt.claims["email"] == email
    assert vt.claims["name"] == name


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\ud800\\u0041", "\\udc00\\ud800"])
def test_json_11_lone_surrogates(fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey, escape: str) -> None:
    bridge = fresh()
    _malformed(bridge, net, signed(hdr(rs), (_claims_text(idp) + f',"name":"{escape}"}}').encode(), rs))
    _malformed(bridge, net, signed(hdr(rs), (_claims_text(idp) + f',"{escape}":1}}').encode(), rs))
    header = b'{"alg":"RS256","kid":"%s","x":"%s"}' % (rs.kid.encode(), escape.encode())
    _malformed(bridge, net, signed(header, base_claims(idp), rs))


def test_json_11_paired_surrogates_are_fine(fresh: Fresh, idp: MockIdP, rs: SigningKey) -> None:
    body = (_claims_text(idp) + ',"name":"\\ud83d\\ude00"}').encode()
    assert fresh().verify(signed(hdr(rs), body, rs)).claims["name"] == "\U0001f600"


def test_json_12_aud_with_5000_entries(fresh: Fresh, idp: MockIdP, rs: SigningKey) -> None:
    aud = [idp.audience] + [f"a{i}" for i in range(4999)]
    bridge = fresh(top={"limits": {"max_token_bytes": 1024 * 1024}})
    expect_reject(lambda: bridge.verify(signed(hdr(rs), base_claims(idp, aud=aud), rs)), InvalidAudience)


def test_json_12_audience_bound_is_exact(fresh: Fresh, idp: MockIdP, rs: SigningKey) -> None:
    """max_audiences (50); an access token so that extra audiences are allowed at all."""
    bridge = fresh()
    h = hdr(rs, typ="at+jwt")
    fifty = [idp.audience] + [f"api-{i}" for i in range(49)]
    assert bridge.verify(signed(h, base_claims(idp, aud=fifty), rs)).token_type == "access"
    fifty_one = fifty + ["api-50"]
    expect_reject(lambda: bridge.verify(signed(h, base_claims(idp, aud=fifty_one), rs)), InvalidAudience)


def test_json_12_large_custom_arrays_are_bounded_by_size_only(
    fresh: Fresh, idp: MockIdP, rs: SigningKey
) -> None:
    """Pinned: custom claims (``groups``) have no count limit of their own; the token size cap
    (32 KiB default) bounds them: refused by default, accepted whole with a 1 MiB cap."""
    groups = [f"g{i}" for i in range(5000)]
    token = signed(hdr(rs), base_claims(idp, groups=groups), rs)
    assert len(token) > 32 * 1024
    expect_reject(lambda: fresh().verify(token), TokenTooLarge, "token_too_large")
    big = fresh(top={"limits": {"max_token_bytes": 1024 * 1024}})
    assert big.verify(token).claims["groups"] == groups


def test_json_12_number_of_claims_is_bounded(
    fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """max_claims (500) top-level members: 500 pass, 501 are malformed."""
    bridge = fresh()
    claims = base_claims(idp)
    claims.update({f"c{i}": 1 for i in range(500 - len(claims))})
    assert len(claims) == 500
    assert bridge.verify(signed(hdr(rs), claims, rs)).subject == "u-1"
    claims["one_more"] = 1
    net.requests.clear()
    recorder = DecodeRecorder()
    monkeypatch.setattr("federation._rfc7515.b64url_decode", recorder)
    monkeypatch.setattr("federation._rfc7515._decode_matched", recorder)  # the parser's fast path
    _malformed(fresh(), net, signed(hdr(rs), claims, rs))
    assert recorder.calls == 2  # header and payload only: the signature was never decoded
