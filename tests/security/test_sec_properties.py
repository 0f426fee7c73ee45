"""DOS-01: property-based exception hygiene (Hypothesis).

Any input either succeeds or raises one of the library's own errors — never a
dependency's exception (KeyError, TypeError, ValueError, UnicodeDecodeError,
binascii.Error, RecursionError, OverflowError, JSONDecodeError, pydantic's
ValidationError, yaml's errors) — and never hangs (every example has a
deadline; the billion-laughs case is bounded by counted work, not by time).

* token parser: ``federation._rfc7515.parse_compact`` -> MalformedToken family;
* key-set parser: ``federation._rfc7517.import_jwks`` / ``import_jwk`` -> UnusableKey
  (their documented error); ``_keys._documents.parse_jwks`` -> FetchFailed;
* config loader: ``federation.config.load_config`` on dicts and on YAML files -> ConfigError.
The mapping engine does not exist yet (pending: issue 5).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from federation._keys._documents import FetchFailed, parse_jwks
from federation._keys._http import FetchResponse
from federation._rfc7515 import Limits, parse_compact
from federation._rfc7517 import UnusableKey, import_jwk, import_jwks
from federation.config import BridgeConfig, KeysConfig, load_config
from federation.errors import ConfigError, MalformedToken

SETTINGS = settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
json_like = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


b64_text = st.one_of(st.binary(max_size=70).map(b64), st.text(max_size=12))

# -- token parser ------------------------------------------------------------------------------

_segment = st.one_of(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=60),
    st.binary(max_size=60).map(b64),
    st.builds(lambda v: b64(json.dumps(v).encode()), json_like),
    st.builds(
        lambda v: b64(json.dumps({"alg": "RS256", **v}).encode()),
        st.dictionaries(
            st.sampled_from(["kid", "typ", "cty", "crit", "b64", "zip", "enc", "jwk", "x5c", "jku", "alg"]),
            json_like,
            max_size=3,
        ),
    ),
)
tokens = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300),
    st.builds(lambda a, b, c: f"{a}.{b}.{c}", _segment, _segment, _segment),
    st.lists(_segment, max_size=7).map(".".join),
    st.builds(lambda a, b, c: f"{a}.{b}.{c}".encode(), _segment, _segment, _segment),
    json_like,
)


@SETTINGS
@given(tokens)
def test_dos_01_parse_compact_raises_only_malformed_token(token: Any) -> None:
    try:
        jws = parse_compact(token, Limits())
    except MalformedToken:
        return
    assert isinstance(jws.header, dict) and isinstance(jws.claims, dict) and isinstance(jws.alg, str)


@SETTINGS
@given(st.integers(min_value=0, max_value=40), st.integers(min_value=0, max_value=40))
def test_dos_01_parse_compact_with_deep_or_wide_json(depth: int, width: int) -> None:
    payload = '{"x":' + "[" * depth + ",".join(["1"] * width) + "]" * depth + "}"
    token = "eyJhbGciOiJSUzI1NiJ9." + b64(payload.encode()) + ".AAAA"
    try:
        parse_compact(token, Limits())
    except MalformedToken:
        pass


# -- key-set parser ------------------------------------------------------------------------------

_jwk_members = st.fixed_dictionaries(
    {},
    optional={
        "kty": st.one_of(st.sampled_from(["RSA", "EC", "OKP", "oct", "PQC", ""]), json_like),
        "crv": st.one_of(
            st.sampled_from(["P-256", "P-384", "P-521", "Ed25519", "X25519", "secp256k1"]), json_like
        ),
        "n": b64_text,
        "e": st.sampled_from(["AQAB", "Aw", "AQ", "AAEAAQ", "", "AA"]),
        "x": b64_text,
        "y": b64_text,
        "d": b64_text,
        "k": b64_text,
        "alg": st.one_of(st.sampled_from(["RS256", "ES256", "EdDSA", "HS256", "none", "ES521"]), json_like),
        "use": st.one_of(st.sampled_from(["sig", "enc"]), json_like),
        "key_ops": json_like,
        "kid": json_like,
        "x5c": st.one_of(st.lists(b64_text, max_size=2), json_like),
        "issuer": json_like,
    },
)


@SETTINGS
@given(
    st.one_of(
        json_like,
        st.builds(lambda ks: {"keys": ks}, st.lists(st.one_of(_jwk_members, json_like), max_size=6)),
    )
)
def test_dos_01_import_jwks_raises_only_unusable_key(document: Any) -> None:
    try:
        keyset, warnings = import_jwks(document, max_keys=5)
    except UnusableKey:
        return
    assert all(isinstance(w, str) for w in warnings)
    for key in keyset.keys:
        assert key.algorithms  # every imported key can do at least one algorithm


@SETTINGS
@given(st.one_of(_jwk_members, json_like))
def test_dos_01_import_jwk_raises_only_unusable_key(jwk: Any) -> None:
    try:
        import_jwk(jwk)
    except UnusableKey:
        pass


@SETTINGS
@given(st.one_of(st.binary(max_size=200), json_like.map(lambda v: json.dumps(v).encode())))
def test_dos_01_parse_jwks_raises_only_fetch_failed(body: bytes) -> None:
    try:
        parse_jwks(FetchResponse(200, {"content-type": "application/json"}, body), KeysConfig())
    except FetchFailed:
        pass


# -- config loader -------------------------------------------------------------------------------

_issuer_entry = st.fixed_dictionaries(
    {},
    optional={
        "provider": st.one_of(st.just("oidc"), json_like),
        "issuer": st.one_of(st.sampled_from(["https://idp.test", "", "idp"]), json_like),
        "audiences": st.one_of(st.lists(st.text(max_size=8), max_size=3), json_like),
        "jwks_uri": st.one_of(
            st.sampled_from(["https://idp.test/jwks", "http://x/", "file:///x"]), json_like
        ),
        "algorithms": st.one_of(
            st.lists(st.sampled_from(["RS256", "HS256", "none", "X"]), max_size=3), json_like
        ),
        "token_types": st.one_of(st.lists(st.sampled_from(["id", "access", "x"]), max_size=2), json_like),
    },
)
_config = st.fixed_dictionaries(
    {},
    optional={
        "issuers": st.one_of(st.lists(_issuer_entry, max_size=3), json_like),
        "keys": st.one_of(
            st.dictionaries(st.sampled_from(list(KeysConfig.model_fields)), json_like, max_size=4), json_like
        ),
        "limits": st.one_of(st.dictionaries(st.text(max_size=16), json_like, max_size=3), json_like),
        "leeway": json_like,
    },
)


@SETTINGS
@given(
    st.one_of(_config, st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), json_like, max_size=4))
)
def test_dos_01_load_config_dict_raises_only_config_error(data: dict[Any, Any]) -> None:
    try:
        config = load_config(data)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) for p in exc.problems)
        return
    assert isinstance(config, BridgeConfig)


_yaml_text = st.one_of(
    st.text(max_size=300),
    _config.map(lambda c: yaml.safe_dump(c, allow_unicode=True)),
    st.builds(
        lambda doc, cut, junk: doc[:cut] + junk + doc[cut:],
        _config.map(lambda c: yaml.safe_dump(c)),
        st.integers(0, 200),
        st.sampled_from(
            ["\t", ": :", "&a", "*a", "!!python/object:os.system", "<<: *x", "\x00", "- [", "'", "{"]
        ),
    ),
)


@SETTINGS
@given(text=_yaml_text)
@example(text="\x08")  # found by Hypothesis: yaml.reader.ReaderError escaped load_config
@example(text="issuers: []\n\x07")
def test_dos_01_load_config_yaml_file_raises_only_config_error(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    path = tmp_path_factory.mktemp("cfg") / "federation.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass") if _encodable(text) else path.write_bytes(
        b"\xff"
    )
    try:
        load_config(path)
    except ConfigError as exc:
        assert exc.file == str(path)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def test_dos_01_yaml_python_tags_are_never_executed(tmp_path: Path) -> None:
    path = tmp_path / "federation.yaml"
    path.write_text("issuers: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError):
        load_config(path)


def test_dos_01_yaml_alias_expansion_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Billion laughs: 9 levels of 9 aliases is a 1 KiB file naming 9**9 nodes. The loader must
    refuse it or load it with work proportional to the file, never expand it. Work is counted
    (PyYAML object constructions), not timed; the counter stops a runaway early."""
    lines = ['a0: &a0 ["lol"]'] + [
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)
    ]
    path = tmp_path / "federation.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size < 1024
    real = yaml.constructor.BaseConstructor.construct_object
    calls = 0

    def counted(self: Any, node: Any, deep: bool = False) -> Any:
        nonlocal calls
        calls += 1
        if calls > 100_000:
            raise AssertionError("alias expansion is unbounded (more than 100 000 constructions)")
        return real(self, node, deep=deep)

    monkeypatch.setattr(yaml.constructor.BaseConstructor, "construct_object", counted)
    with pytest.raises(ConfigError):  # whatever it loads, it is not a bridge config
        load_config(path)
    assert calls < 1000
