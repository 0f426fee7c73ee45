"""External test vectors: loading, expectations, override and policy tables, counts.

Sources (read in place from ``../shared/vectors``, see its SOURCES.md):
Wycheproof ``testvectors_v1`` (C2SP @dac1dd47) and the RFC 7520 JOSE cookbook.

Every case gets exactly one *expectation*, decided from its label and the
explicit tables below, never from the library's outcome:

* ``verify``  — a ``valid`` case: the library must verify it;
* ``reject``  — an ``invalid`` or ``acceptable`` case (strict: legacy
  encodings are refused): the library must reject it with its own error;
* ``override`` — one of the upstream mislabels (:data:`MISLABELS`, listed in
  docs/security.md, "External test vectors");
* ``policy``  — a ``valid`` case that our documented policy refuses
  (:func:`policy_reason`): HMAC keys/algorithms from a key set, RSA keys
  below 2048 bits or with e < 65537 ("key refused by policy"), four upstream
  cases whose JWK ``alg`` contradicts the token, and six empty-payload JWS
  that can never be a JWT (see :data:`POLICY_CASES`). Asserted rejected with
  the stated error; never counted as verified;
* ``n/a``     — a case that is not a JWS verification: JWE strings (they are
  asserted rejected as not-a-JWS in test_sec_jwe.py) and primitive groups
  whose hash/parameters match no JOSE algorithm.

The *outcome* then places the case in one bucket: verified, rejected,
overridden, refused by policy (with the reason), not applicable — or failed, when the
library disagrees with the expectation (the per-case tests fail too).
"""

from __future__ import annotations

import functools
import hmac
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from security_support import LIBRARY_ERRORS, as_jwks, b64u, parse_jws, verify_jws

from federation._rfc7517 import UnusableKey, import_jwk
from federation.errors import DisallowedAlgorithm, FederationError, KeySetUnavailable, MalformedToken

SHARED_DIR = Path(os.environ.get("FEDERATION_SHARED_DIR", Path(__file__).resolve().parents[3] / "shared"))
VECTORS = SHARED_DIR / "vectors"
WYCHEPROOF = VECTORS / "wycheproof" / "testvectors_v1"
COOKBOOK = VECTORS / "jose-cookbook"

#: Filled by test_vector_counts.py, printed by conftest's terminal summary.
VECTOR_SUMMARY: dict[str, Any] = {}

JWS_FILES = ("json_web_signature_test.json", "json_web_key_test.json", "json_web_crypto_test.json")
JWE_FILES = ("json_web_encryption_test.json",)
#: Primitive signature files and the JWS algorithm each corresponds to.
PRIMITIVE_FILES: dict[str, str] = {
    "ecdsa_secp256r1_sha256_p1363_test.json": "ES256",
    "ecdsa_secp384r1_sha384_p1363_test.json": "ES384",
    "ecdsa_secp521r1_sha512_p1363_test.json": "ES512",
    "rsa_signature_2048_sha256_test.json": "RS256",
    "rsa_signature_2048_sha384_test.json": "RS384",
    "rsa_signature_2048_sha512_test.json": "RS512",
    "rsa_pss_2048_sha256_mgf1_32_test.json": "PS256",
    "rsa_pss_2048_sha384_mgf1_48_test.json": "PS384",
    "rsa_pss_4096_sha512_mgf1_64_test.json": "PS512",
    "ed25519_test.json": "EdDSA",
}
_SHA = {"ES256": "SHA-256", "ES384": "SHA-384", "ES512": "SHA-512"}
_CURVE = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_COORD = {"P-256": 32, "P-384": 48, "P-521": 66}

#: Upstream mislabels (SOURCES.md §1 "Known upstream data anomalies"; security.md §5.1).
#: (file, tcId) -> (the MAC/signature must verify in the HMAC strictness mode?, reason).
#: In the production path all five are HS256 and are rejected like every HMAC token.
MISLABELS: dict[tuple[str, int], tuple[bool, str]] = {
    ("json_web_signature_test.json", 357): (
        True,
        "byte-identical to 367/370, contradictory labels (C2SP/wycheproof#236): canonical, MAC matches",
    ),
    ("json_web_signature_test.json", 367): (
        True,
        "labelled invalid but byte-identical to the valid 357 (C2SP/wycheproof#236)",
    ),
    ("json_web_signature_test.json", 370): (
        True,
        "labelled invalid but byte-identical to the valid 357 (C2SP/wycheproof#236)",
    ),
    ("json_web_signature_test.json", 372): (
        False,
        "labelled valid but a '?' sits inside the header segment; the MAC is over the text "
        "without it, so strict base64url must reject it",
    ),
    ("json_web_signature_test.json", 373): (
        False,
        "labelled valid but a '?' sits inside the payload segment; strict base64url must reject it",
    ),
}

#: Valid-labelled cases our policy refuses for reasons of their own key/alg metadata
#: (not listed in SOURCES.md; reported to the lead as upstream anomalies).
#: (file, tcId) -> (expected error, reason).
POLICY_CASES: dict[tuple[str, int], tuple[type[Exception], str]] = {
    ("json_web_signature_test.json", 346): (
        DisallowedAlgorithm,
        "ALG-13: the JWK says alg PS256, the token is PS384; a key is bound to its one alg",
    ),
    ("json_web_signature_test.json", 350): (
        DisallowedAlgorithm,
        "ALG-13: the JWK says alg PS256, the token is PS384; a key is bound to its one alg",
    ),
    ("json_web_signature_test.json", 347): (
        KeySetUnavailable,
        "KEY-10: the JWK says alg 'ES521', which is no JWS algorithm; the only key is refused "
        "at import, so the set has no usable key",
    ),
    ("json_web_signature_test.json", 351): (
        KeySetUnavailable,
        "KEY-10: the JWK says alg 'ES521', which is no JWS algorithm; the only key is refused "
        "at import, so the set has no usable key",
    ),
}

_EMPTY = (
    MalformedToken,
    "ENC-04: an empty payload segment is refused before decoding (a JWT payload is a JSON "
    "object; detached content is refused)",
)
for _tc in (259, 264, 268, 272, 320, 325):  # rs256/rs384/rs512/ps256/ps384/ps512 "emptyPayload"
    POLICY_CASES[("json_web_signature_test.json", _tc)] = _EMPTY

HMAC_POLICY = "KEY-07/KEY-15: HMAC is never accepted from an issuer with a key set (oct keys refused)"
RSA_POLICY = "KEY-01/KEY-02: RSA keys below 2048 bits or with e < 65537 are refused at import"


@dataclass(frozen=True)
class Case:
    """One external vector, ready to run."""

    file: str
    tc_id: int
    group: str
    result: str  # valid | invalid | acceptable | (cookbook) valid/invalid
    comment: str
    kind: str  # "jws" | "primitive" | "jwe"
    token: Any = None  # jws/jwe string (or anything the file holds)
    jwks: Any = None  # JWK Set document for jws cases
    hmac_key: bytes | None = None  # the group's oct key, for the HMAC strictness mode
    alg: str | None = None  # primitive cases
    jwk: dict[str, Any] | None = None
    msg: bytes = b""
    sig: bytes = b""
    flags: tuple[str, ...] = field(default=())

    @property
    def id(self) -> str:
        stem = self.file.replace("_test.json", "").replace(".json", "")
        return f"{stem}-tc{self.tc_id}"


def present() -> bool:
    return WYCHEPROOF.is_dir() and COOKBOOK.is_dir()


def _load(name: str) -> dict[str, Any]:
    with open(WYCHEPROOF / name, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def _is_hmac_keyed(keys: Any) -> bool:
    entries = keys["keys"] if isinstance(keys, dict) and "keys" in keys else [keys]
    return any(isinstance(k, dict) and k.get("kty") == "oct" for k in entries)


def _oct_key(keys: Any) -> bytes | None:
    entries = keys["keys"] if isinstance(keys, dict) and "keys" in keys else [keys]
    for k in entries:
        if isinstance(k, dict) and k.get("kty") == "oct":
            value = k.get("k", "")
            return __import__("base64").urlsafe_b64decode(value + "=" * (-len(value) % 4))
    return None


def jws_cases() -> list[Case]:
    cases: list[Case] = []
    for name in JWS_FILES:
        for group in _load(name)["testGroups"]:
            keys = group.get("public") or group.get("private")
            for t in group["tests"]:
                if "jwe" in t:
                    cases.append(
                        Case(
                            name,
                            t["tcId"],
                            group.get("comment", ""),
                            t["result"],
                            t["comment"],
                            "jwe",
                            t["jwe"],
                        )
                    )
                    continue
                cases.append(
                    Case(
                        name,
                        t["tcId"],
                        group.get("comment", ""),
                        t["result"],
                        t["comment"],
                        "jws",
                        token=t["jws"],
                        jwks=as_jwks(keys),
                        hmac_key=_oct_key(group.get("private")) if group.get("private") else None,
                        flags=tuple(t.get("flags", ())),
                    )
                )
    return cases


def jwe_cases() -> list[Case]:
    cases = [c for c in jws_cases() if c.kind == "jwe"]
    for name in JWE_FILES:
        for group in _load(name)["testGroups"]:
            for t in group["tests"]:
                cases.append(
                    Case(
                        name, t["tcId"], group.get("comment", ""), t["result"], t["comment"], "jwe", t["jwe"]
                    )
                )
    return cases


def _ec_jwk_from_point(public_key: dict[str, Any]) -> dict[str, Any]:
    """A JWK for groups that ship only the uncompressed point (fixed-size x||y, RFC 7518 §6.2.1)."""
    crv = _CURVE[public_key["curve"]]
    size = _COORD[crv]
    raw = bytes.fromhex(public_key["uncompressed"])
    assert raw[0] == 4 and len(raw) == 1 + 2 * size
    return {"kty": "EC", "crv": crv, "x": b64u(raw[1 : 1 + size]), "y": b64u(raw[1 + size :])}


def _applicable(alg: str, group: dict[str, Any]) -> bool:
    """Does the group's primitive correspond exactly to JWS ``alg``?"""
    if alg.startswith("ES"):
        return (
            group.get("sha") == _SHA[alg]
            and _CURVE.get(group["publicKey"]["curve"])
            == {
                "ES256": "P-256",
                "ES384": "P-384",
                "ES512": "P-521",
            }[alg]
        )
    bits = alg[2:]
    if alg.startswith("RS"):
        return group.get("sha") == f"SHA-{bits}"
    if alg.startswith("PS"):
        return (
            group.get("sha") == f"SHA-{bits}"
            and group.get("mgf") == "MGF1"
            and group.get("mgfSha") == f"SHA-{bits}"
            and group.get("sLen") == int(bits) // 8
        )
    return group.get("publicKeyJwk", {}).get("crv") == "Ed25519"


def primitive_cases() -> Iterator[tuple[Case, bool]]:
    """(case, applicable) for every primitive-file case."""
    for name, alg in PRIMITIVE_FILES.items():
        for group in _load(name)["testGroups"]:
            jwk = group.get("publicKeyJwk") or group.get("keyJwk")
            if jwk is None:
                jwk = _ec_jwk_from_point(group["publicKey"])
            applicable = _applicable(alg, group)
            for t in group["tests"]:
                yield (
                    Case(
                        name,
                        t["tcId"],
                        group.get("type", ""),
                        t["result"],
                        t["comment"],
                        "primitive",
                        alg=alg,
                        jwk=dict(jwk),
                        msg=bytes.fromhex(t["msg"]),
                        sig=bytes.fromhex(t["sig"]),
                        flags=tuple(t.get("flags", ())),
                    ),
                    applicable,
                )


# -- expectations ----------------------------------------------------------------------------


def rsa_policy_refuses(jwk: dict[str, Any]) -> bool:
    """The brief's key policy: RSA below 2048 bits or e < 65537 is refused."""
    if jwk.get("kty") != "RSA":
        return False
    import base64

    def num(v: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(v + "=" * (-len(v) % 4)), "big")

    return num(jwk["n"]).bit_length() < 2048 or num(jwk["e"]) < 65537


def policy_reason(case: Case) -> tuple[type[Exception], str] | None:
    """Why a valid-labelled case is refused by policy (None: it is not)."""
    if (case.file, case.tc_id) in POLICY_CASES:
        return POLICY_CASES[(case.file, case.tc_id)]
    if case.kind == "jws" and (_is_hmac_keyed(case.jwks) or _alg_of(case.token).startswith("HS")):
        return DisallowedAlgorithm, HMAC_POLICY
    if case.kind == "primitive" and case.jwk is not None and rsa_policy_refuses(case.jwk):
        return UnusableKey, RSA_POLICY
    return None


def _alg_of(token: Any) -> str:
    try:
        return parse_jws(token).alg
    except LIBRARY_ERRORS:
        return ""


def expectation(case: Case, applicable: bool = True) -> str:
    if case.kind == "jwe" or not applicable:
        return "n/a"
    if (case.file, case.tc_id) in MISLABELS:
        return "override"
    if case.result == "valid":
        return "policy" if policy_reason(case) else "verify"
    return "reject"


# -- running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    accepted: bool
    error: BaseException | None = None
    payload: bytes | None = None


def run(case: Case) -> Outcome:
    """Run one case through the library's own path; any non-library exception propagates."""
    try:
        if case.kind == "primitive":
            assert case.alg is not None and case.jwk is not None
            key = import_jwk(case.jwk)
            if case.alg not in key.algorithms:
                raise DisallowedAlgorithm("the algorithm does not fit the key")
            ok = key.verifier(case.alg)(case.msg, case.sig)
            return Outcome(ok)
        payload = verify_jws(case.token, case.jwks)
        return Outcome(True, payload=payload)
    except LIBRARY_ERRORS as exc:
        return Outcome(False, error=exc)


def hmac_mode(case: Case) -> bool:
    """The HMAC strictness mode: the library's strict parser, then HMAC-SHA2 computed here.

    HS* is disabled in the library; this mode exists only to put the HMAC-keyed
    Wycheproof cases (notably the "base64" group) through the library's strict
    compact/base64url/JSON parsing. True when parsing succeeds and the MAC matches.
    """
    import hashlib

    assert case.hmac_key is not None
    try:
        jws = parse_jws(case.token)
    except LIBRARY_ERRORS:
        return False
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}.get(jws.alg)
    if digest is None:
        return False
    kid_ok = True
    if isinstance(case.jwks, dict):
        kids = {k.get("kid") for k in case.jwks["keys"] if k.get("kty") == "oct"}
        kid_ok = jws.kid in kids
    mac = hmac.new(case.hmac_key, jws.signing_input, digest).digest()
    return kid_ok and hmac.compare_digest(mac, jws.signature)


def bucket(case: Case, outcome: Outcome, applicable: bool = True) -> str:
    exp = expectation(case, applicable)
    if exp == "n/a":
        return "not applicable"
    if exp == "override":
        return "overridden"
    if exp == "policy":
        expected_error, _ = policy_reason(case) or (FederationError, "")
        ok = not outcome.accepted and isinstance(outcome.error, expected_error)
        return "refused by policy" if ok else "failed"
    if exp == "verify":
        return "verified" if outcome.accepted else "failed"
    return "rejected" if not outcome.accepted else "failed"


# -- RFC 7520 cookbook -----------------------------------------------------------------------


def cookbook(path: str) -> dict[str, Any]:
    with open(COOKBOOK / path, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def public_part(jwk: dict[str, Any]) -> dict[str, Any]:
    private = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
    return {k: v for k, v in jwk.items() if k not in private}


COOKBOOK_POSITIVE = (
    "jws/4_1.rsa_v15_signature.json",
    "jws/4_2.rsa-pss_signature.json",
    "jws/4_3.ecdsa_signature.json",
    "curve25519/jws.json",
)


def cookbook_negatives() -> list[tuple[str, Any, dict[str, Any]]]:
    """(id, token, JWK Set) for every cookbook serialisation that a JWKS issuer must reject.

    The key set is the public part of the example's own key when it is
    asymmetric (so rejection is never for want of the right key).
    """
    items: list[tuple[str, Any, dict[str, Any]]] = []
    for path in sorted(p.relative_to(COOKBOOK).as_posix() for p in COOKBOOK.rglob("*.json")):
        if path.startswith("jwk/"):
            continue
        data = cookbook(path)
        # The nesting example's signed inner JWT has no serialised output; its JWE does.
        section = data["encrypt"] if path.startswith("6.") else data
        key = section.get("input", {}).get("key")
        keys = [public_part(key)] if isinstance(key, dict) and key.get("kty") != "oct" else []
        for label, value in section.get("output", {}).items():
            if path in COOKBOOK_POSITIVE and label == "compact":
                continue  # the positive vectors (verified in test_sec_cookbook.py)
            token = value if isinstance(value, str) else json.dumps(value)
            items.append((f"{path.rsplit('.json', 1)[0]}:{label}", token, {"keys": keys}))
    return items


def policy_tag(case: Case) -> str:
    reason = policy_reason(case)
    return reason[1].split(":", 1)[0] if reason else ""


@functools.lru_cache(maxsize=1)
def all_counts() -> dict[str, Counter[str]]:
    """Per-source bucket counts over every case of every file.

    The extra entry ``"refused by policy: reasons"`` breaks the policy bucket
    down by catalogue row (KEY-01/KEY-02 RSA key policy, KEY-07/KEY-15 HMAC,
    KEY-10 unknown JWK alg, ALG-13 key bound to its alg, ENC-04 empty payload).
    """
    counts: dict[str, Counter[str]] = {}
    reasons: Counter[str] = Counter()

    def note(file: str, case: Case, label: str) -> None:
        counts.setdefault(file, Counter())[label] += 1
        if label == "refused by policy":
            reasons[policy_tag(case)] += 1

    for case in jws_cases():
        if case.kind == "jwe":
            note(case.file, case, "not applicable")
            continue
        note(case.file, case, bucket(case, run(case)))
    for case in jwe_cases():
        if case.file in JWE_FILES:
            note(case.file, case, "not applicable")
    for case, applicable in primitive_cases():
        outcome = run(case) if applicable else Outcome(False)
        note(case.file, case, bucket(case, outcome, applicable))
    cb: Counter[str] = Counter()
    for path in COOKBOOK_POSITIVE:
        data = cookbook(path)
        try:
            verify_jws(data["output"]["compact"], {"keys": [public_part(data["input"]["key"])]})
            cb["verified"] += 1
        except LIBRARY_ERRORS:
            cb["failed"] += 1
    for _label, token, jwks in cookbook_negatives():
        try:
            verify_jws(token, jwks)
            cb["failed"] += 1
        except LIBRARY_ERRORS:
            cb["rejected"] += 1
    counts["jose-cookbook (RFC 7520)"] = cb
    counts["refused by policy: reasons"] = reasons
    return counts
