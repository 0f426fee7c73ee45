"""Wycheproof through the library's own verification path (docs/security.md, "External test vectors").

* JWS files (json_web_signature, json_web_key, json_web_crypto ``jws`` cases):
  the bridge's path at the JWS level (security_support.verify_jws: strict
  compact parse, alg allow-list = every asymmetric algorithm the engine has,
  the group's key (set) judged as a fetched JWK Set, key selection by
  kid/alg, signature). The payloads are not claim sets, so the claims layer
  cannot run: that is the only part of the bridge left out.
* Primitive files (ECDSA P1363, RSA PKCS#1 v1.5, RSA-PSS, Ed25519): the
  group's JWK through ``import_jwk`` (the JWKS loader's own import), then
  ``VerificationKey.verifier(alg)(msg, sig)`` with ``alg`` mapped from the file.
* The HMAC-keyed JWS cases also run in a test-only HMAC mode (the library's
  strict parser, then HMAC computed here), since the library has no HMAC.

Expectations come from the label and the explicit tables in
security_vectors.py (upstream mislabels; policy refusals), never from the
library's outcome. ``valid`` verifies; ``invalid`` and ``acceptable`` are
rejected with a library error (any other exception fails the test).
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import security_vectors as sv
from security_support import LIBRARY_ERRORS, parse_jws

from federation._rfc7517 import import_jwk


def _jws() -> list[sv.Case]:
    return [c for c in sv.jws_cases() if c.kind == "jws"] if sv.present() else []


def _hmac() -> list[sv.Case]:
    return [c for c in _jws() if c.file == "json_web_signature_test.json" and c.hmac_key is not None]


def _primitive() -> list[tuple[sv.Case, bool]]:
    return list(sv.primitive_cases()) if sv.present() else []


def _decoded_payload(token: str) -> bytes:
    p = token.split(".")[1]
    return base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))


def _verifies_without_policy(case: sv.Case) -> bool:
    """For policy refusals: does the signature itself verify once the policy is lifted?

    The key's ``alg`` member is dropped (ALG-13/KEY-10 cases) and the empty
    payload is allowed (ENC-04 cases); the crypto check is the library's.
    """
    jws = case.token.split(".")
    header = parse_jws(jws[0] + ".e30." + jws[2])  # only to read alg/kid through the strict parser
    keys = case.jwks["keys"]
    key = next(k for k in keys if k.get("kid") == header.kid)
    vkey = import_jwk({k: v for k, v in key.items() if k != "alg"})
    signature = base64.urlsafe_b64decode(jws[2] + "=" * (-len(jws[2]) % 4))
    return vkey.verifier(header.alg)(f"{jws[0]}.{jws[1]}".encode(), signature)


@pytest.mark.parametrize("case", _jws() or [None], ids=lambda c: c.id if c else "vectors-missing")
def test_wycheproof_jws(shared_dir: Path, case: sv.Case | None) -> None:
    assert case is not None
    expected = sv.expectation(case)
    outcome = sv.run(case)
    if expected == "verify":
        assert outcome.accepted, f"{case.comment}: rejected with {outcome.error!r}"
        assert outcome.payload == _decoded_payload(case.token)
    elif expected == "reject":
        assert not outcome.accepted, f"{case.comment}: accepted"
        assert isinstance(outcome.error, LIBRARY_ERRORS)
    elif expected == "override":
        # Production path: all five are HS256 tokens, refused like every HMAC token.
        assert not outcome.accepted
        # The corrected label is asserted in test_wycheproof_hmac_strictness.
    else:
        assert expected == "policy"
        error, reason = sv.policy_reason(case) or (Exception, "")
        assert not outcome.accepted, f"accepted despite policy ({reason})"
        assert isinstance(outcome.error, error), f"{outcome.error!r} is not {error.__name__} ({reason})"
        if case.tc_id in (346, 347, 350, 351) or reason.startswith("ENC-04"):
            assert _verifies_without_policy(case), "the policy case must be cryptographically valid"


@pytest.mark.parametrize("case", _hmac() or [None], ids=lambda c: c.id if c else "vectors-missing")
def test_wycheproof_hmac_strictness(shared_dir: Path, case: sv.Case | None) -> None:
    """HMAC-keyed cases through the library's strict parser (HS* itself is disabled)."""
    assert case is not None
    override = sv.MISLABELS.get((case.file, case.tc_id))
    expected = override[0] if override else case.result == "valid"
    assert sv.hmac_mode(case) is expected, override[1] if override else case.comment


@pytest.mark.parametrize("item", _primitive() or [None], ids=lambda i: i[0].id if i else "vectors-missing")
def test_wycheproof_signature_primitives(shared_dir: Path, item: tuple[sv.Case, bool] | None) -> None:
    assert item is not None
    case, applicable = item
    expected = sv.expectation(case, applicable)
    if expected == "n/a":
        pytest.skip("hash/parameters match no JOSE algorithm (counted as not applicable)")
    if expected == "policy":
        error, _reason = sv.policy_reason(case) or (Exception, "")
        assert sv.rsa_policy_refuses(case.jwk or {})
        with pytest.raises(error):
            import_jwk(case.jwk)
        return
    outcome = sv.run(case)
    if expected == "verify":
        assert outcome.accepted, f"{case.comment} {case.flags}: rejected ({outcome.error!r})"
    else:
        assert not outcome.accepted, f"{case.result} {case.comment} {case.flags}: accepted"


def test_wycheproof_tables_name_real_cases(shared_dir: Path) -> None:
    """The override and policy tables point at existing cases with the labels they claim."""
    by_key = {(c.file, c.tc_id): c for c in sv.jws_cases()}
    for key in (*sv.MISLABELS, *sv.POLICY_CASES):
        assert key in by_key, key
    labels = {k: by_key[k].result for k in sv.MISLABELS}
    assert labels == {
        ("json_web_signature_test.json", 357): "valid",
        ("json_web_signature_test.json", 367): "invalid",
        ("json_web_signature_test.json", 370): "invalid",
        ("json_web_signature_test.json", 372): "valid",
        ("json_web_signature_test.json", 373): "valid",
    }
    assert (
        by_key[("json_web_signature_test.json", 357)].token
        == by_key[("json_web_signature_test.json", 367)].token
    )
    assert (
        by_key[("json_web_signature_test.json", 357)].token
        == by_key[("json_web_signature_test.json", 370)].token
    )
    assert all(by_key[k].result == "valid" for k in sv.POLICY_CASES)
