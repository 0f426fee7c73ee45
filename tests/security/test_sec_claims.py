"""CLM-*: registered claims (catalogue: docs/security.md).

Catalogue class -> ours: Expired -> TokenExpired (``expired``); NotYetValid ->
TokenNotYetValid (``not_yet_valid``); InvalidClaim(iat) for a future ``iat``
-> IssuedInFuture (``issued_in_future``); InvalidClaim(x) -> InvalidClaim with
``.claim == x`` (``invalid_claim``); InvalidIssuer -> UntrustedIssuer
(``untrusted_issuer``); InvalidAudience -> InvalidAudience
(``invalid_audience``), which per errors.py also covers an ``azp`` that is not
a configured audience. Issuer checks happen in routing: NO-IO.

CLM-17 (nonce), CLM-18 (single-use URL tokens) and CLM-20 (auth_time against max_age) are
the sign-in flows' checks, tested in tests/web/test_service.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from security_support import NOW, Net, base_claims, expect_reject, hdr, jdump, signed

from federation import Bridge
from federation.config import BridgeConfig
from federation.errors import (
    ConfigError,
    InvalidAudience,
    InvalidClaim,
    IssuedInFuture,
    TokenExpired,
    TokenNotYetValid,
    UntrustedIssuer,
)
from federation.testing import MockIdP, SigningKey

Fresh = Callable[..., Bridge]
LEEWAY = 60


@pytest.fixture
def rs(idp: MockIdP) -> SigningKey:
    return idp.key_for("RS256")


@pytest.fixture
def bridge(fresh: Fresh) -> Bridge:
    return fresh()


def _with(idp: MockIdP, **members: Any) -> bytes:
    """BASE_CLAIMS with members set verbatim (None -> JSON null; use _drop to remove)."""
    claims = base_claims(idp, iat=NOW - 1000, nbf=None)
    for name, value in members.items():
        if value is _drop:
            claims.pop(name, None)
        else:
            claims[name] = value
    return jdump(claims)


_drop = object()


def _tok(rs: SigningKey, payload: bytes, **header: Any) -> str:
    return signed(hdr(rs, **header), payload, rs)


def _claim_error(bridge: Bridge, token: str, name: str) -> None:
    err = expect_reject(lambda: bridge.verify(token), InvalidClaim, "invalid_claim")
    assert err.claim == name


# -- exp / nbf / iat --------------------------------------------------------------------------


def test_clm_01_expired(bridge: Bridge, idp: MockIdP, rs: SigningKey) -> None:
    expect_reject(lambda: bridge.verify(_tok(rs, _with(idp, exp=NOW - LEEWAY - 1))), TokenExpired, "expired")
    # boundary: "current time MUST be before exp" (+ leeway): exp + leeway == now is expired
    expect_reject(lambda: bridge.verify(_tok(rs, _with(idp, exp=NOW - LEEWAY))), TokenExpired, "expired")
    assert bridge.verify(_tok(rs, _with(idp, exp=NOW - LEEWAY + 1))).subject == "u-1"


def test_clm_01_exp_equal_to_now_without_leeway(fresh: Fresh, idp: MockIdP, rs: SigningKey) -> None:
    bridge = fresh(top={"leeway": 0})
    expect_reject(lambda: bridge.verify(_tok(rs, _with(idp, exp=NOW))), TokenExpired, "expired")
    assert bridge.verify(_tok(rs, _with(idp, exp=NOW + 1))).subject == "u-1"


def test_clm_01_leeway_default_and_cap(idp: MockIdP) -> None:
    assert BridgeConfig.model_fields["leeway"].default == 60
    Bridge.from_dict({"issuers": [idp.issuer_config()], "leeway": 300})
    for bad in (301, -1, "60s"):
        with pytest.raises(ConfigError):
            Bridge.from_dict({"issuers": [idp.issuer_config()], "leeway": bad})


def test_clm_02_exp_missing(bridge: Bridge, idp: MockIdP, rs: SigningKey) -> None:
    _claim_error(bridge, _tok(rs, _with(idp, exp=_drop)), "exp")
    _claim_error(bridge, _tok(rs, _with(idp, exp=_drop), typ="at+jwt"), "exp")  # every token type


@pytest.mark.parametrize("value", [str(NOW + 300), True, False, None, [], {}, "", [NOW + 300]], ids=repr)
def test_clm_03_exp_wrong_json_type(bridge: Bridge, idp: MockIdP, rs: SigningKey, value: Any) -> None:
    _claim_error(bridge, _tok(rs, _with(idp, exp=value)), "exp")


@pytest.mark.parametrize("raw", ["1e308", "1e400", "100000000000000000000", "253402300800", "-1e400"])
def test_clm_04_exp_out_of_range(bridge: Bridge, idp: MockIdP, rs: SigningKey, raw: str) -> None:
    payload = _with(idp, exp=_drop)[:-1] + b',"exp":' + raw.encode() + b"}"
    _claim_error(bridge, _tok(rs, payload), "exp")


@pytest.mark.parametrize("value", [-1, 0, 1])
def test_clm_04_exp_zero_or_negative_is_expired(
    bridge: Bridge, idp: MockIdP, rs: SigningKey, value: int
) -> None:
    expect_reject(lambda: bridge.verify(_tok(rs, _with(idp, exp=value, iat=0))), TokenExpired, "expired")


def test_clm_04_fractional_exp_is_compared_numerically(bridge: Bridge, idp: MockIdP, rs: SigningKey) -> None:
    vt = bridge.verify(_tok(rs, _with(idp, exp=NOW + 300.5)))
    assert vt.expires_at.timestamp() == NOW + 300.5
    expect_reject(lambda: bridge.verify(_tok(rs, _with(idp, exp=NOW - LEEWAY - 0.5))), TokenExpired)


def test_clm_04_far_future_exp_policy(bridge: Bridge, idp: MockIdP, rs: SigningKey) -> None:
    """Pinned policy: the sanity bound is the largest datetime (9999-12-31T23:59:59Z), no lifetime cap.
    A 20-year token is accepted; one second past the bound is an invalid claim; no OverflowError."""
    twenty_years = NOW + 20 * 365 * 86400
    assert bridge.verify(_tok(rs, _with(idp, exp=twenty_years))).subject == "u-1"
    assert bridge.verify(_tok(rs, _with(idp, exp=253402300799))).expires_at.year == 9999
    _claim_error(bridge, _tok(rs, _with(idp, exp=253402300800)), "exp")


def test_clm_05_nbf_in_the_future(bridge: Bridge, idp: MockIdP, rs: SigningKey) -> None:
    expect_reject(
        lambda: bridge.verify(_tok(rs, _with(idp, nbf=NOW + LEEWAY + 1))), TokenNotYetValid, "not_yet_valid"
    )
    assert bridge.verify(_tok(rs, _with(idp, nbf=NOW + LEEWAY))).subject == "u-1"


@pytest.mark.parametrize("value", ["0", True, None, [0], {}], ids=repr)
def test_clm_05_nbf_wrong_type(bridge: Bridge, idp: MockIdP, rs: SigningKey, value: Any) -> None:
    _claim_error(bridge, _tok(rs, _with(idp, nbf=value)), "nbf")


def test_clm_05_nbf_after_exp(bridge: Bridge, idp: MockIdP, rs: SigningKey) -> None:
    _claim_error(bridge, _tok(rs, _with(idp, nbf=NOW + 30, exp=NOW + 20)), "nbf")


def test_clm_06_iat_in_the_future(bridge: Bridge, idp: MockIdP, rs: SigningKey) -> None:
    expect_reject(
        lambda: bridge.verify(_tok(rs, _with(idp, iat=NOW + 3600))), IssuedInFuture, "issued_in_future"
    )
    assert bridge.verify(_tok(rs, _with(idp, iat=NOW + LEEWAY))).subject == "u-1"


def test_clm_06_iat_missing(bridge: Bridge, idp: MockIdP, rs: SigningKey) -> None:
    _claim_error(bridge, _tok(rs, _with(idp, iat=_drop)), "iat")  # id token: required
    vt = bridge.verify(_tok(rs, _with(idp, iat=_drop), typ="at+jwt"))  # pinned: optional for access tokens
    assert vt.token_type == "access"


@pytest.mark.parametrize("value", [str(NOW), True, None, [NOW], {}], ids=repr)
def test_clm_06_iat_wrong_type(bridge: Bridge, idp: MockIdP, rs: SigningKey, value: Any) -> None:
    _claim_error(bridge, _tok(rs, _with(idp, iat=value)), "iat")


def test_clm_06_old_iat_policy(bridge: Bridge, idp: MockIdP, rs: SigningKey) -> None:
    """Pinned policy: no maximum token age (max_age is a login-flow feature, not scheduled)."""
    assert bridge.verify(_tok(rs, _with(idp, iat=NOW - 365 * 86400))).subject == "u-1"


# -- iss ----------------------------------------------------------------------------------------


_LOOK_ALIKES = [
    "https://idp.test/",
    "HTTPS://IDP.TEST",
    "https://IDP.test",
    "https://idp.test:443",
    "https://idp.test.",
    "https://idp.test?x=1",
    "https://idp.test#",
    "https://%69dp.test",
    "https://\u0456dp.test",  # Cyrillic i
    "https://idp.t\u0435st",  # Cyrillic e
    "\uff48\uff54\uff54\uff50\uff53://idp.test",  # full-width
    "https://idp.test\u200b",
    "\u200bhttps://idp.test",
    " https://idp.test",
    "https://idp.test ",
    "http://idp.test",
    "https://idp.test\u0000",
    "https://xn--idp-test.test",
]


def test_clm_07_issuer_look_alikes(fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey) -> None:
    bridge = fresh()
    for iss in _LOOK_ALIKES:
        expect_reject(
            lambda i=iss: bridge.verify(_tok(rs, _with(idp, iss=i))), UntrustedIssuer, "untrusted_issuer"
        )
    assert net.requests == []


def test_clm_07_unicode_normalisation_and_punycode(
    bridges: Any, net: Net, idp: MockIdP, rs: SigningKey
) -> None:
    nfc = "https://b\u00fccher.test"
    bridge = bridges(
        {
            "issuers": [
                {"provider": "oidc", "issuer": nfc, "audiences": [idp.audience], "jwks_uri": idp.jwks_uri}
            ]
        },
        net,
    )
    for iss in ("https://bu\u0308cher.test", "https://xn--bcher-kva.test", "https://B\u00dcCHER.test"):
        expect_reject(lambda i=iss: bridge.verify(_tok(rs, _with(idp, iss=i))), UntrustedIssuer)
    assert net.requests == []
    assert bridge.verify(_tok(rs, _with(idp, iss=nfc))).issuer == nfc  # control: exact code points


def test_clm_08_issuer_substring_or_prefix(bridges: Any, net: Net, idp: MockIdP, rs: SigningKey) -> None:
    expected = "https://idp.test/tenant1"
    bridge = bridges({"issuers": [idp.issuer_config(issuer=expected, jwks_uri=idp.jwks_uri)]}, net)
    for iss in (
        "https://idp.test/tenant",
        "https://idp.test",
        "idp",
        "h",
        "",
        "https://idp.test/tenant12",
        "https://idp.test/tenant1/",
        "tenant1",
        "https://idp.test/tenant1/../tenant1",
    ):
        expect_reject(lambda i=iss: bridge.verify(_tok(rs, _with(idp, iss=i))), UntrustedIssuer)
    assert net.requests == []
    assert bridge.verify(_tok(rs, _with(idp, iss=expected))).issuer == expected


@pytest.mark.parametrize(
    "value",
    [
        ["https://attacker.test", "https://idp.test"],
        ["https://idp.test"],
        {"iss": "https://idp.test"},
        1,
        None,
        True,
    ],
    ids=repr,
)
def test_clm_09_issuer_non_string(fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey, value: Any) -> None:
    expect_reject(
        lambda: fresh().verify(_tok(rs, _with(idp, iss=value))), UntrustedIssuer, "untrusted_issuer"
    )
    assert net.requests == []


def test_clm_10_issuer_missing(fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey) -> None:
    expect_reject(
        lambda: fresh().verify(_tok(rs, _with(idp, iss=_drop))), UntrustedIssuer, "untrusted_issuer"
    )
    assert net.requests == []


# -- aud / azp ----------------------------------------------------------------------------------


def test_clm_11_audience_missing(bridge: Bridge, idp: MockIdP, rs: SigningKey) -> None:
    for typ in ("JWT", "at+jwt"):
        expect_reject(
            lambda t=typ: bridge.verify(_tok(rs, _with(idp, aud=_drop), typ=t)),
            InvalidAudience,
            "invalid_audience",
        )


@pytest.mark.parametrize(
    "aud",
    ["client-456", "MY-CLIENT", "my-clien", "my-client1", " my-client", "my-client ", "my-client\u0000"],
)
def test_clm_12_wrong_audience(bridge: Bridge, idp: MockIdP, rs: SigningKey, aud: str) -> None:
    expect_reject(lambda: bridge.verify(_tok(rs, _with(idp, aud=aud))), InvalidAudience, "invalid_audience")


def test_clm_13_multi_valued_audience_id_token(fresh: Fresh, idp: MockIdP, rs: SigningKey) -> None:
    bridge = fresh()
    both = ["client-456", idp.audience]
    expect_reject(lambda: bridge.verify(_tok(rs, _with(idp, aud=both))), InvalidAudience, "invalid_audience")
    expect_reject(
        lambda: bridge.verify(_tok(rs, _with(idp, aud=both, azp=idp.audience))),
        InvalidAudience,
        "invalid_audience",
    )
    trusting_both = fresh(audiences=[idp.audience, "client-456"])
    assert trusting_both.verify(_tok(rs, _with(idp, aud=both, azp=idp.audience))).audience == tuple(both)
    expect_reject(
        lambda: trusting_both.verify(_tok(rs, _with(idp, aud=both, azp="evil"))),
        InvalidAudience,
        "invalid_audience",
    )
    # pinned: azp is not required when several (trusted) audiences are named
    assert trusting_both.verify(_tok(rs, _with(idp, aud=both))).subject == "u-1"


def test_clm_13_multi_valued_audience_access_token(bridge: Bridge, idp: MockIdP, rs: SigningKey) -> None:
    vt = bridge.verify(_tok(rs, _with(idp, aud=["api-other", idp.audience]), typ="at+jwt"))
    assert vt.token_type == "access" and vt.audience == ("api-other", idp.audience)
    expect_reject(
        lambda: bridge.verify(_tok(rs, _with(idp, aud=["api-other"]), typ="at+jwt")),
        InvalidAudience,
        "invalid_audience",
    )


@pytest.mark.parametrize(
    "aud",
    [[], [[]], [["my-client"]], {"my-client": True}, 123, None, [None], [1, "my-client"], "", [""], True],
    ids=repr,
)
def test_clm_14_audience_wrong_type(bridge: Bridge, idp: MockIdP, rs: SigningKey, aud: Any) -> None:
    for typ in ("JWT", "at+jwt"):
        expect_reject(lambda t=typ: bridge.verify(_tok(rs, _with(idp, aud=aud), typ=t)), InvalidAudience)


def test_clm_15_azp_mismatch_on_an_id_token(bridge: Bridge, idp: MockIdP, rs: SigningKey) -> None:
    """OIDC Core §3.1.3.7 step 5: an azp that is present must be our client id."""
    token = _tok(rs, _with(idp, aud=idp.audience, azp="client-456"))
    expect_reject(lambda: bridge.verify(token), InvalidAudience, "invalid_audience")


def test_clm_15_azp_on_access_tokens_and_matching_azp(bridge: Bridge, idp: MockIdP, rs: SigningKey) -> None:
    """Pinned: an access token's azp names the client that obtained it (not us): not checked."""
    assert bridge.verify(_tok(rs, _with(idp, azp="client-456"), typ="at+jwt")).token_type == "access"
    assert bridge.verify(_tok(rs, _with(idp, azp=idp.audience))).subject == "u-1"


@pytest.mark.parametrize("azp", [123, None, ["my-client"], True], ids=repr)
def test_clm_15_azp_wrong_type(bridge: Bridge, idp: MockIdP, rs: SigningKey, azp: Any) -> None:
    _claim_error(bridge, _tok(rs, _with(idp, azp=azp)), "azp")


# -- sub ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sub",
    [
        _drop,
        "",
        123,
        None,
        [],
        ["u-1"],
        {},
        True,
        "x" * 256,
        "u\u0000",
        "u\r\n",
        "u\x1b[2J",
        "u\t1",
        "\u0085",
    ],
    ids=lambda v: "missing" if v is _drop else repr(v)[:20],
)
def test_clm_16_bad_sub(bridge: Bridge, idp: MockIdP, rs: SigningKey, sub: Any) -> None:
    _claim_error(bridge, _tok(rs, _with(idp, sub=sub)), "sub")


def test_clm_16_sub_boundaries(bridge: Bridge, idp: MockIdP, rs: SigningKey) -> None:
    assert bridge.verify(_tok(rs, _with(idp, sub="x" * 255))).subject == "x" * 255
    assert bridge.verify(_tok(rs, _with(idp, sub="\u00e9l\u00e8ve"))).subject == "\u00e9l\u00e8ve"  # pinned


@pytest.mark.parametrize("value", ["true", "false", 1, 0, "yes", "1", True, False, None], ids=repr)
def test_clm_19_boolean_look_alikes_are_not_coerced(
    bridge: Bridge, idp: MockIdP, rs: SigningKey, value: Any
) -> None:
    """The verifier returns claim values exactly as sent; the generic profile's identity counts
    only JSON ``true`` as verified (provider profiles documenting strings: issue 4; linking on
    email: issue 5/6)."""
    vt = bridge.verify(_tok(rs, _with(idp, email="u@example.test", email_verified=value)))
    got = vt.claims["email_verified"]
    assert got == value and type(got) is type(value)
    assert vt.email_verified is (value is True)  # the generic profile vouches only for JSON true
