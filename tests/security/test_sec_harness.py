"""The JWS-level harness used for external vectors agrees with ``parse_compact``.

``parse_jws`` is ``parse_compact`` minus the payload JSON parse (see
security_support.py). This differential test keeps it honest: on every vector
token, every generated token and arbitrary text, both either fail with the same
library error class, or both succeed with identical header, signing input,
signature, alg and kid; the only permitted difference is a payload that is not
a JSON claim set.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import security_vectors as sv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from security_support import LIBRARY_ERRORS, base_claims, hdr, parse_jws, signed

from federation._json import StrictJSONError, loads_object
from federation._rfc7515 import Limits, parse_compact
from federation.errors import MalformedToken
from federation.testing import MockIdP


def _agree(token: object) -> None:
    limits = Limits()
    try:
        harness = parse_jws(token, limits)
        harness_error: BaseException | None = None
    except LIBRARY_ERRORS as exc:
        harness_error = exc
    try:
        real = parse_compact(token, limits)
        real_error: BaseException | None = None
    except LIBRARY_ERRORS as exc:
        real_error = exc
    if harness_error is not None:
        assert real_error is not None, "the harness is stricter than the library"
        assert type(real_error) is type(harness_error)
        return
    if real_error is not None:
        # only the payload JSON step (and the claim count) may differ
        assert type(real_error) is MalformedToken
        try:
            claims = loads_object(harness.payload, max_depth=limits.max_json_depth)
        except StrictJSONError:
            return
        assert len(claims) > limits.max_claims
        return
    assert (real.header, real.signing_input, real.signature, real.alg, real.kid) == (
        harness.header,
        harness.signing_input,
        harness.signature,
        harness.alg,
        harness.kid,
    )
    assert real.claims == json.loads(harness.payload)


def test_harness_agrees_on_every_vector_token(shared_dir: Path) -> None:
    tokens = [c.token for c in sv.jws_cases()] + [c.token for c in sv.jwe_cases()]
    tokens += [t for _id, t, _k in sv.cookbook_negatives()]
    tokens += [sv.cookbook(p)["output"]["compact"] for p in sv.COOKBOOK_POSITIVE]
    assert len(tokens) > 600
    for token in tokens:
        _agree(token)


def test_harness_agrees_on_real_tokens(idp: MockIdP) -> None:
    for alg in ("RS256", "ES256", "PS256", "EdDSA"):
        key = idp.key_for(alg)
        token = signed(hdr(key), base_claims(idp), key)
        _agree(token)
        _agree(token.encode())
        h, p, s = token.split(".")
        for variant in (f"{h}.{p}.", f"{h}.e30.{s}", f"{h}.W10.{s}", f"{h}.{p}.{s}A", token[:-1], f"{h}.{p}"):
            _agree(variant)


@settings(max_examples=300, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(max_size=200),
        st.text(alphabet="AB_-.eyJ0=", max_size=120),
        st.binary(max_size=120),
        st.builds(
            lambda h, p, s: f"{h}.{p}.{s}",
            st.text(alphabet="ABCeyJ9fQ_-0", max_size=40),
            st.text(alphabet="ABCeyJ9fQ_-0", max_size=40),
            st.text(alphabet="ABC_-0", max_size=20),
        ),
    )
)
def test_harness_agrees_on_arbitrary_input(token: object) -> None:
    _agree(token)


@pytest.mark.parametrize("payload", [b"foo", b"", b"[]", b"{}"])
def test_harness_keeps_non_claims_payloads(payload: bytes) -> None:
    from security_support import b64u

    token = "eyJhbGciOiJSUzI1NiJ9." + b64u(payload) + ".AAAA"
    if payload:
        assert parse_jws(token).payload == payload
    else:
        with pytest.raises(MalformedToken):  # an empty payload segment: never a JWT (ENC-04)
            parse_jws(token)
