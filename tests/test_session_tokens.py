"""The app's own access tokens (RFC 9068) and their key ring: keys load from files and the
environment, must fit the algorithm, rotate (the first signs, all verify), publish only
public halves; tokens verify through the strict core and are refused for every way an
attacker or a misconfiguration could make them wrong."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from federation.errors import (
    BadSignature,
    ConfigError,
    DisallowedAlgorithm,
    InvalidAudience,
    InvalidClaim,
    InvalidToken,
    IssuedInFuture,
    MalformedToken,
    TokenExpired,
    UnknownKey,
    UntrustedIssuer,
    WrongTokenType,
)
from federation.sessions import SESSION_ALGORITHMS, SessionKeyRing, SessionTokens
from federation.testing import MockIdP

ISSUER = "https://app.example.com"
NOW = 1_800_000_000.0


def _pem(key: Any) -> bytes:
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def _private(alg: str) -> Any:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


_KEYS: dict[str, list[bytes]] = {}


def _pems(alg: str, count: int = 1) -> list[bytes]:
    """Cached keys per algorithm family (RSA generation is slow)."""
    family = "RSA" if alg in ("RS256", "PS256") else alg
    pool = _KEYS.setdefault(family, [])
    while len(pool) < count:
        pool.append(_pem(_private(alg)))
    return pool[:count]


def _tokens(alg: str = "ES256", pems: list[bytes] | None = None, **options: Any) -> SessionTokens:
    ring = SessionKeyRing.from_pems(alg, pems or _pems(alg))
    return SessionTokens(ring, issuer=ISSUER, **options)


def _issue(tokens: SessionTokens, **options: Any) -> str:
    options.setdefault("roles", {"admin", "member"})
    options.setdefault("generation", 3)
    options.setdefault("session_id", "s-1")
    options.setdefault("now", NOW)
    token, _ = tokens.issue("user-42", **options)
    return token


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    def part(s: str) -> dict[str, Any]:
        return dict(json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))))

    header, payload, _ = token.split(".")
    return part(header), part(payload)


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("alg", SESSION_ALGORITHMS)
def test_a_session_token_round_trips_with_the_rfc_9068_claims(alg: str) -> None:
    tokens = _tokens(alg)
    token = _issue(tokens)
    header, payload = _segments(token)
    assert header == {"alg": alg, "kid": tokens.ring.signing_key.kid, "typ": "at+jwt"}
    assert {"iss", "aud", "sub", "exp", "iat", "jti", "client_id"} <= payload.keys()
    assert payload["exp"] - payload["iat"] == 3600 and payload["aud"] == ISSUER
    claims = tokens.verify(token, now=NOW + 10)
    assert claims.user_id == "user-42" and claims.roles == {"admin", "member"}
    assert claims.generation == 3 and claims.session_id == "s-1"
    assert claims.expires_at == int(NOW) + 3600


def test_every_token_gets_its_own_jti() -> None:
    tokens = _tokens()
    jtis = {tokens.verify(_issue(tokens), now=NOW).jti for _ in range(50)}
    assert len(jtis) == 50


def test_the_kid_is_the_rfc_7638_thumbprint_and_the_jwks_is_public_only() -> None:
    from joserfc.jwk import ECKey

    pem = _pems("ES256")[0]
    ring = SessionKeyRing.from_pems("ES256", [pem])
    assert ring.signing_key.kid == ECKey.import_key(pem).thumbprint()
    (jwk,) = ring.jwks()["keys"]
    assert jwk["kid"] == ring.signing_key.kid and jwk["alg"] == "ES256" and jwk["use"] == "sig"
    assert "d" not in jwk and {"kty", "crv", "x", "y"} <= jwk.keys()


def test_rotation_the_first_key_signs_and_the_previous_key_still_verifies() -> None:
    old, new = _pems("ES256", 2)
    before = _tokens(pems=[old])
    old_token = _issue(before)
    after = _tokens(pems=[new, old])
    new_token = _issue(after)
    assert _segments(new_token)[0]["kid"] == after.ring.keys[0].kid
    assert after.verify(old_token, now=NOW).user_id == "user-42"
    assert len(after.jwks()["keys"]) == 2
    # once the old key is dropped, its tokens are refused
    with pytest.raises(UnknownKey):
        _tokens(pems=[new]).verify(old_token, now=NOW)


def test_expiry_and_clock_skew_are_enforced() -> None:
    tokens = _tokens(access_ttl=60)
    token = _issue(tokens)
    assert tokens.verify(token, now=NOW + 64).user_id == "user-42"  # within the 5 s leeway
    with pytest.raises(TokenExpired):
        tokens.verify(token, now=NOW + 66)
    with pytest.raises(IssuedInFuture):
        tokens.verify(token, now=NOW - 120)


def test_another_apps_or_audiences_session_token_is_refused() -> None:
    pems = _pems("ES256")
    other = SessionTokens(SessionKeyRing.from_pems("ES256", pems), issuer="https://other.example.com")
    mine = SessionTokens(SessionKeyRing.from_pems("ES256", pems), issuer=ISSUER)
    with pytest.raises(UntrustedIssuer):
        mine.verify(_issue(other), now=NOW)
    api = SessionTokens(
        SessionKeyRing.from_pems("ES256", pems), issuer=ISSUER, audience="https://api.example.com"
    )
    with pytest.raises(InvalidAudience):
        mine.verify(_issue(api), now=NOW)


def test_a_tampered_token_is_a_bad_signature() -> None:
    tokens = _tokens()
    header, payload = _segments(_issue(tokens))
    signature = _issue(tokens).split(".")[2]
    payload["roles"] = ["admin", "superuser"]
    forged = f"{_b64(header)}.{_b64(payload)}.{signature}"
    with pytest.raises(BadSignature):
        tokens.verify(forged, now=NOW)


@pytest.mark.parametrize("alg", ["none", "HS256", "RS256", "ES384"])
def test_the_header_cannot_choose_the_algorithm(alg: str) -> None:
    tokens = _tokens("ES256")
    header, payload = _segments(_issue(tokens))
    header["alg"] = alg
    forged = f"{_b64(header)}.{_b64(payload)}.{_issue(tokens).split('.')[2]}"
    with pytest.raises((DisallowedAlgorithm, MalformedToken)):
        tokens.verify(forged, now=NOW)


def test_a_token_without_the_at_jwt_type_is_refused_even_when_validly_signed() -> None:
    tokens = _tokens()
    header, payload = _segments(_issue(tokens))
    ring = tokens.ring
    for typ in ("JWT", None, "id+jwt"):
        forged_header = dict(header)
        if typ is None:
            forged_header.pop("typ")
        else:
            forged_header["typ"] = typ
        signing_input = f"{_b64(forged_header)}.{_b64(payload)}".encode()
        signature = base64.urlsafe_b64encode(ring.sign(signing_input)).rstrip(b"=").decode()
        with pytest.raises(WrongTokenType):
            tokens.verify(f"{signing_input.decode()}.{signature}", now=NOW)
    forged_header = dict(header, typ="application/AT+JWT")  # RFC 9068: the media type, case-insensitive
    signing_input = f"{_b64(forged_header)}.{_b64(payload)}".encode()
    signature = base64.urlsafe_b64encode(ring.sign(signing_input)).rstrip(b"=").decode()
    assert tokens.verify(f"{signing_input.decode()}.{signature}", now=NOW).user_id == "user-42"


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("gen", True),
        ("gen", "3"),
        ("gen", -1),
        ("jti", ""),
        ("sid", 5),
        ("roles", "admin"),
        ("client_id", "x"),
    ],
)
def test_malformed_session_claims_are_refused(claim: str, value: Any) -> None:
    tokens = _tokens()
    header, payload = _segments(_issue(tokens))
    payload[claim] = value
    signing_input = f"{_b64(header)}.{_b64(payload)}".encode()
    signature = base64.urlsafe_b64encode(tokens.ring.sign(signing_input)).rstrip(b"=").decode()
    with pytest.raises(InvalidClaim):
        tokens.verify(f"{signing_input.decode()}.{signature}", now=NOW)


def test_an_external_token_is_never_a_session_token() -> None:
    idp = MockIdP(issuer=ISSUER, audience=ISSUER, alg="ES256")
    with pytest.raises(InvalidToken):
        _tokens().verify(idp.mint(sub="user-42", typ="at+jwt"), now=idp.clock())


def test_errors_never_echo_the_token() -> None:
    tokens = _tokens()
    token = _issue(tokens)
    with pytest.raises(InvalidToken) as raised:
        tokens.verify(token, now=NOW + 10_000)
    assert token not in str(raised.value) and "user-42" not in str(raised.value)


# -- loading keys ----------------------------------------------------------------------


def test_keys_load_from_a_file_relative_to_the_config_and_from_the_environment(tmp_path: Path) -> None:
    first, second = _pems("ES256", 2)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "session.pem").write_bytes(first)
    ring = SessionKeyRing.load(
        "ES256",
        [{"file": "keys/session.pem"}, {"env": "OLD_KEY"}],
        base_dir=tmp_path,
        environ={"OLD_KEY": second.decode()},
    )
    assert [k.kid for k in ring.keys] == [
        SessionKeyRing.from_pems("ES256", [first]).signing_key.kid,
        SessionKeyRing.from_pems("ES256", [second]).signing_key.kid,
    ]


@pytest.mark.parametrize(
    ("entries", "environ", "message"),
    [
        ([{"file": "missing.pem"}], {}, "cannot read the key file"),
        ([{"env": "NOPE"}], {}, "'NOPE' is not set"),
        ([{"file": "a", "env": "b"}], {}, "exactly one of 'file' or 'env'"),
        ([], {}, "at least one private key"),
    ],
)
def test_key_entries_that_cannot_load_are_config_errors(
    tmp_path: Path, entries: list[dict[str, str]], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        SessionKeyRing.load("ES256", entries, base_dir=tmp_path, environ=environ)
    assert raised.value.code == "config_error"


def test_a_key_that_does_not_fit_the_algorithm_is_refused() -> None:
    with pytest.raises(ConfigError, match="does not fit ES256"):
        SessionKeyRing.from_pems("ES256", _pems("EdDSA"))
    with pytest.raises(ConfigError, match="does not fit ES256"):
        SessionKeyRing.from_pems("ES256", [_pem(ec.generate_private_key(ec.SECP384R1()))])
    with pytest.raises(ConfigError, match="1024 bits"):
        SessionKeyRing.from_pems(
            "RS256", [_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))]
        )


def test_a_public_key_garbage_or_an_unknown_algorithm_is_refused() -> None:
    public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for pem in (public, b"not a key", b""):
        with pytest.raises(ConfigError, match="unencrypted PEM private key"):
            SessionKeyRing.from_pems("ES256", [pem])
    with pytest.raises(ConfigError, match=r"sessions\.algorithm"):
        SessionKeyRing.from_pems("HS256", _pems("ES256"))
    with pytest.raises(ConfigError, match="same key twice"):
        SessionKeyRing.from_pems("ES256", _pems("ES256") * 2)


# -- federation keys generate ------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_keys_generate_writes_a_private_key_readable_only_by_its_owner(
    alg: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import stat

    from federation.cli import main

    out = io.StringIO()
    path = tmp_path / "keys" / "session.pem"
    assert main(["keys", "generate", "--alg", alg, "--out", str(path)], out=out) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ring = SessionKeyRing.from_pems(alg, [path.read_bytes()])
    assert out.getvalue().strip().endswith(f"kid {ring.signing_key.kid}")
    # the printed kid is the one the bridge will sign with
    assert _segments(_issue(SessionTokens(ring, issuer=ISSUER)))[0]["kid"] == ring.signing_key.kid
    before = path.read_bytes()
    assert main(["keys", "generate", "--alg", alg, "--out", str(path)], out=io.StringIO()) == 2
    assert path.read_bytes() == before  # never overwritten
    assert "not overwritten" in capsys.readouterr().err


def test_keys_generate_on_a_full_disk_leaves_no_half_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed write was exit 70 and left an empty 0600 file that blocked every retry."""
    import errno
    import io

    from federation.cli import main

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("federation.cli.os.fsync", full)
    path = tmp_path / "session.pem"
    assert main(["keys", "generate", "--out", str(path)], out=io.StringIO()) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert not path.exists()
    monkeypatch.undo()
    assert main(["keys", "generate", "--out", str(path)], out=io.StringIO()) == 0  # a retry works


def test_keys_generate_refuses_an_algorithm_it_cannot_publish(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from federation.cli import main

    assert (
        main(["keys", "generate", "--alg", "HS256", "--out", str(tmp_path / "k.pem")], out=io.StringIO()) == 2
    )
    err = capsys.readouterr().err
    assert "--alg must be one of" in err and "sessions.secret" in err  # its flag's words, and the way out
    assert "sessions.algorithm" not in err
    assert not (tmp_path / "k.pem").exists()


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")  # joserfc prefers RFC 9864's "Ed25519" name
@pytest.mark.parametrize("alg", SESSION_ALGORITHMS)
def test_a_peer_verifier_accepts_the_session_tokens(alg: str) -> None:
    """joserfc, an independent implementation, verifies our signatures with the published JWKS."""
    from joserfc import jwt
    from joserfc.jwk import KeySet

    tokens = _tokens(alg)
    token = _issue(tokens)
    decoded = jwt.decode(token, KeySet.import_key_set(tokens.jwks()), algorithms=[alg])
    assert decoded.claims["sub"] == "user-42" and decoded.header["typ"] == "at+jwt"
