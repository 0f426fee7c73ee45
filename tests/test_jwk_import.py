"""JWK and JWK Set import (``federation._rfc7517``): which published entries are
usable for verification, which are skipped and why, and ``KeySet.find``.

An unusable entry raises :class:`UnusableKey` from ``import_jwk`` and is
skipped with a one-line reason by ``import_jwks``; good keys beside it still load.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from federation._rfc7517 import KeySet, TooManyKeys, UnusableKey, VerificationKey, import_jwk, import_jwks
from federation.errors import DisallowedAlgorithm, UnknownKey
from federation.spi import ALGORITHMS
from federation.testing import SigningKey, generate_signing_key
from federation.testing._keys import sign

RSA_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})

# -- material (generated once per module) -----------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return generate_signing_key("RS256", kid="rsa-1")


@pytest.fixture(scope="module")
def other_rsa_key() -> SigningKey:
    return generate_signing_key("RS256", kid="rsa-2")


@pytest.fixture(scope="module")
def ec_key() -> SigningKey:
    return generate_signing_key("ES256", kid="ec-1")


@pytest.fixture(scope="module")
def ed_key() -> SigningKey:
    return generate_signing_key("EdDSA", kid="ed-1")


@pytest.fixture(scope="module")
def rsa_1024() -> dict[str, Any]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    nums = private.public_key().public_numbers()
    return {"kty": "RSA", "kid": "weak", "n": b64uint(nums.n), "e": b64uint(nums.e)}


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64uint(value: int) -> str:
    return b64u(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def self_signed_der_b64(private_key: Any) -> str:
    """A self-signed certificate for ``private_key``, as one standard-base64 ``x5c`` entry."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "federation test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2020, 1, 1, tzinfo=timezone.utc))
        .not_valid_after(datetime(2040, 1, 1, tzinfo=timezone.utc))
        .sign(private_key, None if isinstance(private_key, ed25519.Ed25519PrivateKey) else hashes.SHA256())
    )
    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode("ascii")


def jwk_of(key: SigningKey, **changes: Any) -> dict[str, Any]:
    """The key's public JWK with ``changes`` (a value of None removes the member)."""
    jwk = dict(key.public_jwk)
    for name, value in changes.items():
        if value is None:
            jwk.pop(name, None)
        else:
            jwk[name] = value
    return jwk


def unusable(entry: object, reason: str) -> UnusableKey:
    with pytest.raises(UnusableKey) as info:
        import_jwk(entry)
    message = str(info.value)
    assert reason.lower() in message.lower(), message
    if isinstance(entry, dict):  # reasons, never key material
        for member in ("n", "x", "y", "d", "k"):
            value = entry.get(member)
            if isinstance(value, str) and len(value) > 8:
                assert value[:16] not in message
    return info.value


# -- good keys --------------------------------------------------------------------------------------


def test_rsa_jwk_imports(rsa_key: SigningKey) -> None:
    key = import_jwk(jwk_of(rsa_key))
    assert isinstance(key, VerificationKey)
    assert (key.kid, key.kty, key.crv, key.alg) == ("rsa-1", "RSA", None, "RS256")
    assert key.algorithms == {"RS256"}
    assert isinstance(key.public_key, rsa.RSAPublicKey)
    assert key.issuer is None


def test_ec_jwk_imports(ec_key: SigningKey) -> None:
    key = import_jwk(jwk_of(ec_key))
    assert (key.kid, key.kty, key.crv, key.algorithms) == ("ec-1", "EC", "P-256", {"ES256"})
    assert isinstance(key.public_key, ec.EllipticCurvePublicKey)


_EC_SPECS = [(name, spec.crv) for name, spec in ALGORITHMS.items() if spec.kty == "EC"]
# The cryptography name of each curve of RFC 7518 §6.2.1.1.
_SEC_NAMES = {"P-256": "secp256r1", "P-384": "secp384r1", "P-521": "secp521r1"}


@pytest.mark.parametrize(("alg", "crv"), _EC_SPECS)
def test_every_curve_of_the_algorithm_table_imports(alg: str, crv: str) -> None:
    key = import_jwk(generate_signing_key(alg).public_jwk)
    assert (key.crv, key.algorithms) == (crv, {alg})
    assert isinstance(key.public_key, ec.EllipticCurvePublicKey)
    assert key.public_key.curve.name == _SEC_NAMES[crv]


def test_ed25519_jwk_imports_under_both_algorithm_names(ed_key: SigningKey) -> None:
    key = import_jwk(jwk_of(ed_key))
    assert (key.kty, key.crv) == ("OKP", "Ed25519")
    assert key.algorithms == {"EdDSA", "Ed25519"}
    assert import_jwk(jwk_of(ed_key, alg=None)).algorithms == {"EdDSA", "Ed25519"}
    assert import_jwk(jwk_of(ed_key, alg="Ed25519")).algorithms == {"EdDSA", "Ed25519"}


def test_jwk_without_alg_fits_every_algorithm_of_its_type(rsa_key: SigningKey, ec_key: SigningKey) -> None:
    assert import_jwk(jwk_of(rsa_key, alg=None)).algorithms == RSA_ALGS
    assert import_jwk(jwk_of(ec_key, alg=None)).algorithms == {"ES256"}


def test_minimal_jwk_imports(rsa_key: SigningKey) -> None:
    jwk = {"kty": "RSA", "n": rsa_key.public_jwk["n"], "e": rsa_key.public_jwk["e"]}
    key = import_jwk(jwk)
    assert (key.kid, key.alg, key.algorithms) == (None, None, RSA_ALGS)


@pytest.mark.parametrize("ops", [["verify"], ["sign", "verify"]])
def test_key_ops_with_verify_is_usable(rsa_key: SigningKey, ops: list[str]) -> None:
    assert import_jwk(jwk_of(rsa_key, use=None, key_ops=ops)).kid == "rsa-1"


def test_issuer_member_is_kept(rsa_key: SigningKey) -> None:
    key = import_jwk(jwk_of(rsa_key, issuer="https://login.example/{tenantid}/v2.0"))
    assert key.issuer == "https://login.example/{tenantid}/v2.0"
    assert import_jwk(jwk_of(rsa_key, issuer=["not", "a", "string"])).issuer is None


def test_unknown_members_are_ignored(rsa_key: SigningKey) -> None:
    key = import_jwk(jwk_of(rsa_key, x5t="abc", ext=True, note={"any": "thing"}))
    assert key.kid == "rsa-1"


def test_x5c_whose_certificate_matches_is_accepted(rsa_key: SigningKey, ec_key: SigningKey) -> None:
    assert import_jwk(jwk_of(rsa_key, x5c=[self_signed_der_b64(rsa_key.private_key)])).kid == "rsa-1"
    assert import_jwk(jwk_of(ec_key, x5c=[self_signed_der_b64(ec_key.private_key)])).kid == "ec-1"


def test_verifier_checks_real_signatures(rsa_key: SigningKey) -> None:
    key = import_jwk(jwk_of(rsa_key, alg=None))
    data = b"header.payload"
    for alg in ("RS256", "PS512"):
        signature = sign(rsa_key.private_key, alg, data)
        assert key.verifier(alg)(data, signature) is True
        assert key.verifier(alg)(data + b"x", signature) is False
        assert key.verifier(alg) is key.verifier(alg)  # built once per algorithm
    with pytest.raises(DisallowedAlgorithm):
        key.verifier("ES256")


# -- skipped entries --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"use": "enc"}, "use"),
        ({"use": "SIG"}, "use"),
        ({"use": None, "key_ops": ["encrypt", "wrapKey"]}, "key_ops"),
        ({"use": None, "key_ops": ["sign"]}, "key_ops"),
        ({"use": None, "key_ops": []}, "key_ops"),
        ({"use": None, "key_ops": "verify"}, "key_ops"),
        ({"use": None, "key_ops": [1]}, "key_ops"),
        ({"alg": "HS256"}, "alg"),
        ({"alg": "none"}, "alg"),
        ({"alg": "RSA-OAEP"}, "alg"),
        ({"alg": "RSA1_5"}, "alg"),
        ({"alg": "ES256"}, "alg"),
        ({"alg": "rs256"}, "alg"),
        ({"alg": 256}, "alg"),
        ({"kid": ""}, "kid"),
        ({"kid": 7}, "kid"),
        ({"e": "Aw"}, "weak"),  # e = 3
        ({"e": "AQ"}, "weak"),  # e = 1
        ({"e": "AQAC"}, "weak"),  # e = 65538, even
        ({"e": None}, "'e'"),
        ({"n": None}, "'n'"),
        ({"n": "not+base64/url"}, "base64url"),
        ({"n": 12345}, "'n'"),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else None,
)
def test_unusable_rsa_entries(rsa_key: SigningKey, changes: dict[str, Any], reason: str) -> None:
    unusable(jwk_of(rsa_key, **changes), reason)


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "oth", "k"])
def test_private_members_make_an_entry_unusable(rsa_key: SigningKey, member: str) -> None:
    unusable(jwk_of(rsa_key, **{member: "AQAB"}), "private")


def test_a_real_private_jwk_is_unusable(ec_key: SigningKey) -> None:
    from joserfc.jwk import ECKey

    private_jwk = dict(ECKey.import_key(ec_key.private_key).as_dict(private=True))
    assert "d" in private_jwk
    unusable(private_jwk, "private")


def test_symmetric_keys_are_unusable() -> None:
    unusable({"kty": "oct", "kid": "hmac", "k": b64u(secrets.token_bytes(32)), "alg": "HS256"}, "symmetric")
    unusable({"kty": "oct", "kid": "hmac"}, "not supported")


@pytest.mark.parametrize("kty", ["PQC", "rsa", "", None, 1])
def test_unknown_key_types_are_unusable(rsa_key: SigningKey, kty: object) -> None:
    unusable(jwk_of(rsa_key, kty=kty), "not supported")  # None: no kty at all


def test_rsa_1024_is_unusable(rsa_1024: dict[str, Any]) -> None:
    unusable(rsa_1024, "modulus size")


def test_rsa_above_8192_bits_is_unusable() -> None:
    n = (1 << 16383) | secrets.randbits(16000) | 1  # never factored or used: refused on size first
    unusable({"kty": "RSA", "n": b64uint(n), "e": "AQAB"}, "modulus size")


def test_rsa_integers_with_a_leading_zero_byte_load_as_the_same_key(rsa_key: SigningKey) -> None:
    """Issue 10: OpenAM, Gluu and others publish them; the number is the same (a note says so)."""
    padded = b64u(b"\x00" + unb64u(rsa_key.public_jwk["n"]))
    for changes in ({"n": padded}, {"e": "AAEAAQ"}):  # 65537 with a leading zero byte
        keyset, warnings = import_jwks({"keys": [jwk_of(rsa_key, **changes)]}, max_keys=100)
        assert len(keyset) == 1 and keyset.keys[0].same_key_as(import_jwk(jwk_of(rsa_key)))
        assert len(warnings) == 1 and "minimal" in warnings[0]


def test_rsa_even_modulus_is_unusable(rsa_key: SigningKey) -> None:
    n = int.from_bytes(unb64u(rsa_key.public_jwk["n"]), "big") ^ 1
    unusable(jwk_of(rsa_key, n=b64uint(n)), "weak")


def _flip_last_bit(value: str) -> str:
    raw = bytearray(unb64u(value))
    raw[-1] ^= 0x01
    return b64u(bytes(raw))


@pytest.mark.parametrize("member", ["x", "y"])
def test_ec_point_off_the_curve_is_unusable(ec_key: SigningKey, member: str) -> None:
    unusable(jwk_of(ec_key, **{member: _flip_last_bit(ec_key.public_jwk[member])}), "invalid")


@pytest.mark.parametrize(
    "transform",
    [lambda raw: raw[1:], lambda raw: b"\x00" + raw, lambda raw: raw + b"\x00"],
    ids=["31-bytes", "33-bytes-leading-zero", "33-bytes-trailing"],
)
def test_ec_coordinate_of_the_wrong_length_is_unusable(
    ec_key: SigningKey, transform: Callable[[bytes], bytes]
) -> None:
    x = b64u(transform(unb64u(ec_key.public_jwk["x"])))
    unusable(jwk_of(ec_key, x=x), "length")


@pytest.mark.parametrize(("changes", "reason"), [({"crv": "secp256k1"}, "not supported"),
    ({"crv": "P-256 "}, "not supported"), ({"crv": None}, "not supported"), ({"crv": "P-384"}, "length"),
    ({"y": None}, "'y'"), ({"alg": "ES384"}, "alg")])  # fmt: skip
def test_malformed_ec_entries_are_unusable(ec_key: SigningKey, changes: dict[str, Any], reason: str) -> None:
    unusable(jwk_of(ec_key, **changes), reason)


def test_okp_x25519_is_unusable(ed_key: SigningKey) -> None:
    unusable(jwk_of(ed_key, crv="X25519", alg=None), "not supported")
    unusable(jwk_of(ed_key, crv="Ed448", alg=None), "not supported")


def test_ed25519_key_of_the_wrong_length_is_unusable(ed_key: SigningKey) -> None:
    unusable(jwk_of(ed_key, x=b64u(unb64u(ed_key.public_jwk["x"])[:31])), "32 bytes")


def test_x5c_whose_certificate_holds_another_key_is_unusable(
    rsa_key: SigningKey, other_rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    unusable(jwk_of(rsa_key, x5c=[self_signed_der_b64(other_rsa_key.private_key)]), "x5c")
    unusable(jwk_of(rsa_key, x5c=[self_signed_der_b64(ec_key.private_key)]), "x5c")


@pytest.mark.parametrize("x5c", [[], "MIIB", [1], ["not base64!"], [b64u(b"not a certificate")]], ids=repr)
def test_malformed_x5c_is_unusable(rsa_key: SigningKey, x5c: object) -> None:
    unusable(jwk_of(rsa_key, x5c=x5c), "x5c")


@pytest.mark.parametrize("entry", ["string", None, 1, [], ["kty", "RSA"], True])
def test_non_object_entries_are_unusable(entry: object) -> None:
    unusable(entry, "not a JSON object")


# -- key sets ---------------------------------------------------------------------------------------


def test_good_keys_beside_bad_ones_still_load(
    rsa_key: SigningKey, ec_key: SigningKey, rsa_1024: dict[str, Any]
) -> None:
    document = {
        "keys": [
            {"kty": "PQC", "kid": "future"},
            jwk_of(rsa_key),
            "string",
            None,
            jwk_of(ec_key),
            {"kty": "RSA", "kid": "empty"},
            rsa_1024,
            jwk_of(rsa_key, kid="enc", use="enc"),
        ]
    }
    keyset, warnings = import_jwks(document, max_keys=100)
    assert keyset.kids == {"rsa-1", "ec-1"}
    assert len(keyset) == 2
    assert len(warnings) == 6
    for index in (0, 2, 3, 5, 6, 7):
        assert sum(f"#{index} " in w for w in warnings) == 1, warnings
    assert all("skipped" in w for w in warnings)


def test_duplicate_kid_with_different_keys_makes_neither_usable(
    rsa_key: SigningKey, other_rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    document = {"keys": [jwk_of(rsa_key, kid="dup"), jwk_of(ec_key), jwk_of(other_rsa_key, kid="dup")]}
    keyset, warnings = import_jwks(document, max_keys=100)
    assert keyset.kids == {"ec-1"}
    assert keyset.find("dup", "RS256") is None
    assert len(warnings) == 1
    assert "kid" in warnings[0]


def test_duplicate_kid_across_key_types_is_chosen_by_alg(rsa_key: SigningKey, ec_key: SigningKey) -> None:
    """Issue 10: RFC 7517 §4.5 lets keys of different types share a kid."""
    keyset, warnings = import_jwks({"keys": [jwk_of(rsa_key), jwk_of(ec_key, kid="rsa-1")]}, max_keys=100)
    assert len(keyset) == 2
    assert warnings == []
    assert keyset.find("rsa-1", "ES256") is not None and keyset.find("rsa-1", "RS256") is not None


def test_duplicate_kid_with_the_same_key_but_other_alg_is_one_key(rsa_key: SigningKey) -> None:
    """Issue 10: Keycloak lists one key once per alg; the algorithms are the union."""
    keyset, warnings = import_jwks({"keys": [jwk_of(rsa_key), jwk_of(rsa_key, alg="PS256")]}, max_keys=100)
    assert len(keyset) == 1
    assert warnings == []
    assert keyset.keys[0].algorithms == {"RS256", "PS256"}


def test_identical_duplicate_is_folded(rsa_key: SigningKey) -> None:
    keyset, warnings = import_jwks({"keys": [jwk_of(rsa_key), jwk_of(rsa_key)]}, max_keys=100)
    assert len(keyset) == 1
    assert keyset.kids == {"rsa-1"}
    assert warnings == []


def test_same_key_under_two_kids_is_kept_twice(rsa_key: SigningKey) -> None:
    keyset, warnings = import_jwks({"keys": [jwk_of(rsa_key), jwk_of(rsa_key, kid="alias")]}, max_keys=100)
    assert keyset.kids == {"rsa-1", "alias"}
    assert warnings == []


def test_kidless_keys_are_kept(rsa_key: SigningKey, ec_key: SigningKey) -> None:
    keyset, warnings = import_jwks(
        {"keys": [jwk_of(rsa_key, kid=None), jwk_of(ec_key, kid=None)]}, max_keys=9
    )
    assert len(keyset) == 2
    assert keyset.kids == frozenset()
    assert warnings == []


def test_max_keys(rsa_key: SigningKey) -> None:
    entries = [jwk_of(rsa_key, kid=f"k{i}") for i in range(5)]
    keyset, _ = import_jwks({"keys": entries}, max_keys=5)
    assert len(keyset) == 5
    with pytest.raises(TooManyKeys):
        import_jwks({"keys": entries}, max_keys=4)
    with pytest.raises(UnusableKey):  # junk entries count too: the check comes before parsing
        import_jwks({"keys": [None] * 5}, max_keys=4)


def test_empty_key_set_is_empty_not_an_error() -> None:
    keyset, warnings = import_jwks({"keys": []}, max_keys=10)
    assert (len(keyset), warnings) == (0, [])


@pytest.mark.parametrize(
    "document", [[], {}, {"keys": {}}, {"keys": None}, {"keys": "[]"}, "keys", None], ids=repr
)
def test_documents_that_are_not_jwk_sets_raise(document: object) -> None:
    with pytest.raises(UnusableKey):
        import_jwks(document, max_keys=10)


# -- KeySet.find ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyset(rsa_key: SigningKey, other_rsa_key: SigningKey, ec_key: SigningKey, ed_key: SigningKey) -> KeySet:
    ks, warnings = import_jwks(
        {"keys": [jwk_of(rsa_key), jwk_of(other_rsa_key, alg=None), jwk_of(ec_key), jwk_of(ed_key)]},
        max_keys=10,
    )
    assert warnings == []
    return ks


def test_find_by_kid(keyset: KeySet) -> None:
    key = keyset.find("rsa-1", "RS256")
    assert key is not None and key.kid == "rsa-1"
    assert keyset.find("rsa-1", "RS256") is key
    other = keyset.find("rsa-2", "PS384")  # no JWK alg: any RSA algorithm
    assert other is not None and other.kid == "rsa-2"
    assert keyset.kids == {"rsa-1", "rsa-2", "ec-1", "ed-1"}
    assert len(keyset) == 4


def test_find_unknown_kid_is_none(keyset: KeySet) -> None:
    assert keyset.find("nope", "RS256") is None
    assert keyset.find("RSA-1", "RS256") is None  # kids are compared exactly


@pytest.mark.parametrize(
    ("kid", "alg"),
    [("rsa-1", "PS256"), ("rsa-1", "RS384"), ("rsa-1", "ES256"), ("ec-1", "RS256"), ("ec-1", "ES384"),
     ("ed-1", "ES256"), ("rsa-2", "EdDSA"), ("rsa-1", "HS256"), ("rsa-1", "none")],
)  # fmt: skip
def test_find_with_an_algorithm_the_key_does_not_fit_raises(keyset: KeySet, kid: str, alg: str) -> None:
    with pytest.raises(DisallowedAlgorithm) as info:
        keyset.find(kid, alg)
    assert info.value.code == "disallowed_algorithm"


def test_find_without_kid_uses_the_single_fitting_key(keyset: KeySet) -> None:
    es = keyset.find(None, "ES256")
    assert es is not None and es.kid == "ec-1"
    ed = keyset.find(None, "Ed25519")
    assert ed is not None and ed.kid == "ed-1"
    ps = keyset.find(None, "PS256")  # only the alg-less RSA key fits PS256
    assert ps is not None and ps.kid == "rsa-2"
    assert keyset.find(None, "ES512") is None


def test_find_without_kid_is_ambiguous_when_several_keys_fit(keyset: KeySet) -> None:
    with pytest.raises(UnknownKey) as info:
        keyset.find(None, "RS256")  # rsa-1 (alg RS256) and rsa-2 (no alg) both fit
    assert info.value.code == "unknown_key"
