"""The one algorithm table (``federation.spi.ALGORITHMS``) and everything derived from it.

For every algorithm of the table: a token the testing toolkit mints (signed
through joserfc) verifies in the bridge and in joserfc itself; a token joserfc
mints on its own, with a key the toolkit never saw, verifies in the bridge; the
toolkit's keys have the table's key type, curve and size. And the one "does the
algorithm fit the key" decision refuses a misfit both where a JWK is imported
(its ``alg`` member) and where a token's ``alg`` selects a key.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc import jws, jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

from federation._rfc7517 import KeySet, UnusableKey, import_jwk
from federation._rfc7518 import algorithms_fitting
from federation.errors import BadSignature, DisallowedAlgorithm
from federation.spi import ALGORITHMS, DEFAULT_ALGORITHMS, AlgorithmSpec
from federation.testing import FrozenClock, MockIdP, generate_signing_key

ALGS = sorted(ALGORITHMS)
# joserfc warns when it parses the RFC 8037 name; the bridge accepts both names on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")


def _jose_key(spec: AlgorithmSpec, kid: str) -> RSAKey | ECKey | OKPKey:
    params = cast(Any, {"kid": kid, "alg": spec.name, "use": "sig"})
    if spec.kty == "RSA":
        return RSAKey.generate_key(spec.min_key_bits, parameters=params)
    if spec.kty == "EC":
        return ECKey.generate_key(cast(Any, spec.crv), parameters=params)
    return OKPKey.generate_key(cast(Any, spec.crv), parameters=params)


def test_table_is_the_default_allow_list() -> None:
    assert DEFAULT_ALGORITHMS == (
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519",
    )  # fmt: skip
    assert tuple(ALGORITHMS) == DEFAULT_ALGORITHMS
    assert all(spec.name == name for name, spec in ALGORITHMS.items())
    assert not {"none", "HS256", "HS384", "HS512"} & set(ALGORITHMS)


@pytest.mark.parametrize("alg", ALGS)
def test_toolkit_token_verifies_in_bridge_and_in_joserfc(alg: str) -> None:
    idp = MockIdP(issuer="https://idp.test", audience="my-client", alg=alg, clock=FrozenClock())
    token = idp.mint(sub="alice")
    with idp.bridge() as bridge:
        verified = bridge.verify(token)
    assert verified.algorithm == alg and verified.subject == "alice"
    # The same token checked by joserfc against the published JWK: the toolkit is a standard signer.
    public = idp.keys[0].public_jwk
    importer = {"RSA": RSAKey, "EC": ECKey, "OKP": OKPKey}[public["kty"]]
    result = jws.deserialize_compact(token, importer.import_key(public), algorithms=[alg])
    assert result.headers()["alg"] == alg


@pytest.mark.parametrize("alg", ALGS)
def test_joserfc_minted_token_verifies_in_bridge(alg: str) -> None:
    spec = ALGORITHMS[alg]
    idp = MockIdP(issuer="https://idp.test", audience="my-client", clock=FrozenClock())
    key = _jose_key(spec, "outside")
    idp.serve_jwks({"keys": [key.as_dict(private=False)]})
    claims = idp.claims(sub="bob")
    token = jwt.encode({"alg": alg, "kid": "outside", "typ": "JWT"}, claims, key, algorithms=[alg])
    with idp.bridge() as bridge:
        verified = bridge.verify(token)
    assert verified.algorithm == alg and verified.key_id == "outside" and verified.subject == "bob"
    # A signature by another key of the same shape under that kid does not verify.
    other = _jose_key(spec, "outside")
    forged = jwt.encode({"alg": alg, "kid": "outside", "typ": "JWT"}, claims, other, algorithms=[alg])
    with idp.bridge() as bridge, pytest.raises(BadSignature):
        bridge.verify(forged)


@pytest.mark.parametrize("alg", ALGS)
def test_generated_key_has_the_table_shape(alg: str) -> None:
    spec = ALGORITHMS[alg]
    key = generate_signing_key(alg)
    jwk = key.public_jwk
    assert jwk["kty"] == spec.kty and jwk.get("crv") == spec.crv and jwk["alg"] == alg
    private = key.private_key
    if spec.kty == "RSA":
        assert isinstance(private, rsa.RSAPrivateKey) and private.key_size >= spec.min_key_bits
    elif spec.kty == "EC":
        assert isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.key_size == spec.min_key_bits
        assert spec.coord_size == (private.curve.key_size + 7) // 8
    else:
        assert isinstance(private, ed25519.Ed25519PrivateKey)
        assert len(private.public_key().public_bytes_raw()) == spec.coord_size


def test_generate_refuses_what_the_table_lacks() -> None:
    for alg in ("HS256", "none", "ES256K", "Ed448"):
        with pytest.raises(ValueError, match="unsupported algorithm"):
            generate_signing_key(alg)


# One public JWK per key shape of the table.
SHAPES = {(s.kty, s.crv): generate_signing_key(name).public_jwk for name, s in ALGORITHMS.items()}


def _without_alg(jwk: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in jwk.items() if k != "alg"}


@pytest.mark.parametrize("shape", sorted(SHAPES, key=str), ids=str)
@pytest.mark.parametrize("alg", ALGS)
def test_jwk_import_with_alg_is_the_table_fit(shape: tuple[str, str | None], alg: str) -> None:
    jwk = {**_without_alg(SHAPES[shape]), "alg": alg}
    if ALGORITHMS[alg].fits(*shape):
        key = import_jwk(jwk)
        assert alg in key.algorithms
        assert key.algorithms == algorithms_fitting(*shape, alg)
    else:
        with pytest.raises(UnusableKey, match="not a signature algorithm for this key type"):
            import_jwk(jwk)


@pytest.mark.parametrize("shape", sorted(SHAPES, key=str), ids=str)
@pytest.mark.parametrize("alg", ALGS)
def test_lookup_refuses_exactly_the_misfits(shape: tuple[str, str | None], alg: str) -> None:
    key = import_jwk({**_without_alg(SHAPES[shape]), "kid": "k1"})
    assert key.algorithms == algorithms_fitting(*shape)
    keyset = KeySet([key])
    if ALGORITHMS[alg].fits(*shape):
        assert keyset.find("k1", alg) is key
        assert callable(key.verifier(alg))
    else:
        with pytest.raises(DisallowedAlgorithm, match="does not fit the selected key"):
            keyset.find("k1", alg)
        with pytest.raises(DisallowedAlgorithm, match="does not fit the selected key"):
            key.verifier(alg)


def test_eddsa_names_are_one_algorithm() -> None:
    jwk = _without_alg(SHAPES[("OKP", "Ed25519")])
    assert import_jwk({**jwk, "alg": "EdDSA"}).algorithms == {"EdDSA", "Ed25519"}
    assert import_jwk({**jwk, "alg": "Ed25519"}).algorithms == {"EdDSA", "Ed25519"}
    assert import_jwk(jwk).algorithms == {"EdDSA", "Ed25519"}
    rsa_jwk = _without_alg(SHAPES[("RSA", None)])
    assert import_jwk({**rsa_jwk, "alg": "PS384"}).algorithms == {"PS384"}


@pytest.mark.parametrize(("signer", "claimed"), [("RS256", "ES256"), ("ES256", "ES384"), ("EdDSA", "RS256")])
def test_bridge_refuses_a_token_whose_alg_does_not_fit_its_key(signer: str, claimed: str) -> None:
    idp = MockIdP(issuer="https://idp.test", audience="my-client", alg=signer, clock=FrozenClock())
    # The published key's JWK has no alg, so only the type/curve fit decides (the lookup site).
    idp.serve_jwks({"keys": [_without_alg(idp.keys[0].public_jwk)]})
    token = idp.mint(alg=claimed, key=idp.keys[0])
    with idp.bridge() as bridge, pytest.raises(DisallowedAlgorithm) as caught:
        bridge.verify(token)
    assert caught.value.code == "disallowed_algorithm"
