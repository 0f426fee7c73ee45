"""The mapping engine's fast paths give the answers of the plain ones.

The engine: every rule kind compiled to closures over one frame of resolved paths, the
trace recorded and built when read, is compared with the engine before that work
(tests/mapping/_mapping_oracle.py, verbatim) on generated claims and existing users, for
a mapping that uses every operator, transform, update policy and overlay, the benchmark's
50 rules and every example mapping: every field of the result, the trace included.

Patterns: a plain-string pattern is answered by ``str`` methods, an anchored one is
searched once by ``sub``, and an ASCII value goes straight to the RE2 program; each is
compared here with google-re2's public ``search`` on the same program (the path taken
when none applies) and, where leftmost-first and leftmost-longest agree, with ``re``.
"""

from __future__ import annotations

import dataclasses
import pickle
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, SimpleNamespace
from typing import Any, Literal

import pytest
from _mapping_helpers import EXAMPLES
from _mapping_oracle import oracle_run
from hypothesis import given, settings
from hypothesis import strategies as st

from federation import plugins, providers
from federation.mapping import Mapping as MappingRules
from federation.mapping import MappingResult, _compile, _patterns
from federation.mapping import _engine as engine
from federation.mapping import _mapping as mapping_module
from federation.mapping._model import MappingFile
from federation.mapping._patterns import Pattern

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from mapping import User as BenchUser  # benchmarks/mapping.py: its 50 rules and token
from mapping import fifty_rules, typical_token

PATTERNS = [
    "^/", "/", "^/$", "/$", "ab", "^ab", "ab$", "^ab$", "aa", "aa$", "^aa", "é", "^é", "(?i)^/",
    "(?s)^a.", "a*", "^a*", "^", "$", "^$", "", "x|^a", "^a|^b", "^a|b", "(?:^a)*", "[^a-z0-9]+",
    "(?i)k", "a+", "(?s).", ".", r"\d+", "a|", "^(?:a|)", r"\.", r"^\$", "[.]", "(?i)ss", "\ufffd",
]  # fmt: skip
TEXT = st.text(alphabet=st.sampled_from("ab/é.$\ud800\ufffdkK\u212a\n-1ßs") | st.characters(), max_size=12)


def _reference(pattern: Pattern) -> Pattern:
    """The same pattern with every fast path off: google-re2's public search on every value."""
    plain = Pattern(pattern.source, allow_lazy=True)
    plain._literal = None
    plain._search_raw = None
    plain._longest_raw = None
    plain.anchored = False
    return plain


@pytest.mark.parametrize("source", PATTERNS)
@settings(max_examples=120, deadline=None)
@given(text=TEXT)
def test_search_and_replace_agree_with_the_plain_path(source: str, text: str) -> None:
    fast = Pattern(source)
    plain = _reference(fast)
    assert fast.search(text) is plain.search(text)
    assert fast.sub("<R>", text) == plain.sub("<R>", text)
    assert fast.sub("", text) == plain.sub("", text)
    assert fast.searcher()(text) is plain.search(text)
    replacer = fast.replacer("<R>")
    assert replacer is None or replacer(text) == plain.sub("<R>", text)
    assert (replacer is None) is (fast._literal is None or not fast._literal[0] or fast._literal[2])


def test_plain_strings_and_anchors_are_recognised() -> None:
    assert Pattern("^/")._literal == (True, "/", False)
    assert Pattern(r"@example\.com$")._literal == (False, "@example.com", True)
    assert Pattern("(?i)^/")._literal == (True, "/", False)  # '/' has no other case
    assert Pattern("(?i)^a")._literal is None  # a class of a and A
    assert Pattern("^a|^b").anchored and not Pattern("^a|b").anchored
    assert not Pattern("(?:^a)*").anchored and Pattern("^(?:a|b)c").anchored
    assert Pattern("\ufffd")._literal is None  # a lone surrogate of a value reads as U+FFFD in RE2
    assert Pattern("a*")._literal is None and Pattern("")._literal is None


@pytest.mark.parametrize(
    ("source", "text", "expected"),
    [
        ("^/", "/team-1", "team-1"),
        ("^/", "team/1", "team/1"),
        ("/", "/a/b/", "ab"),
        ("aa", "aaaaa", "a"),
        ("aa$", "aaa", "a"),
        ("^aa$", "aa", ""),
        ("^a*", "aab", "b"),
        ("^", "ab", "ab"),
        ("a*", "bab", "bb"),
        ("[^a-z0-9]+", "pat.teacher--x", "patteacherx"),
    ],
)
def test_replace_matches_re_where_first_and_longest_agree(source: str, text: str, expected: str) -> None:
    ours = Pattern(source, allow_lazy=False).sub("", text)
    assert ours == expected == re.sub(source.replace("$", r"\Z"), "", text)


def test_values_too_long_are_refused_on_every_path() -> None:
    long = "/" + "a" * _patterns.MAX_INPUT_LENGTH
    for source in ("^/", "[^a-z]+", "é+"):
        pattern = Pattern(source)
        with pytest.raises(ValueError, match="too long"):
            pattern.search(long)
        with pytest.raises(ValueError, match="too long"):
            pattern.sub("-", long)


def test_without_the_program_internals_the_public_search_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    # A google-re2 release that renames its private Match: the same answers, the slower way.
    monkeypatch.setattr(_patterns, "_raw_match", lambda compiled: None)
    pattern = Pattern("[^a-z0-9]+", allow_lazy=False)
    assert pattern._longest_raw is None and pattern._search_raw is None
    assert pattern.sub("-", "pat.teacher x") == "pat-teacher-x"
    assert pattern.search("a.b") and not pattern.search("ab")


# -- the engine: compiled closures over one frame, against the engine before them ----------

KITCHEN_SINK = r"""
version: 1
attributes:
  email:        { from: [$email, email], transform: [strip, lower] }
  username:     { from: $username, transform: lower, update: on_create }
  display_name: { from: [name, "{given_name} {family_name}", $username], default: "{sub}" }
  first_name:   { from: given_name, update: if_empty }
  dept:         { from: dept, transform: upper, when: { claim: groups, contains: staff } }
  local:        { from: email, transform: [localpart] }
  domain:       { from: [email, $email], transform: [lower, domain] }
  tag:          { from: tags, transform: [first] }
  csv:          { from: csv, transform: [{ split: "," }, { join: "|" }] }
  level:        { from: level, default: 0 }
  slug:
    from: [name, tags]
    transform:
      [strip, lower, { replace: { pattern: "[^a-z0-9]+", with: "-" } }, { prefix: "u-" }, { suffix: "!" }]
  cut:          { from: [groups, group], transform: [{ replace: { pattern: "^/", with: "" } }, upper] }
  cut_only:     { from: [group, groups], transform: [{ replace: { pattern: "^/", with: "~" } }] }
  tilde:        { from: [groups, tags], transform: [{ replace: { pattern: "^/", with: "~" } }, lower] }
  ends:         { from: [tags, groups], transform: [localpart, domain] }
  long_cut:     { from: [groups, tags], transform: [{ replace: { pattern: "^/", with: "" } }, localpart] }
  nested:       { from: profile.dept }
  first_group:  { from: "groups[0]" }
  flag:         { from: verified, update: if_empty }
  greeting:     { from: "hi {name}!", default: "hi" }
roles:
  sync: authoritative
  default: [member]
  protected: [owner]
  privileged: [admin]
  rules:
    - { grant: [a1], when: { claim: group, equals: admins } }
    - { grant: [a2], when: { claim: groups, equals: admins } }
    - { grant: [a3], when: { claim: verified, equals: true } }
    - { grant: [a4], when: { claim: level, equals: 3 } }
    - { grant: [a5], when: { claim: level, equals: 3.0 } }
    - { grant: [a6], when: { claim: flags, equals: "1" } }
    - { grant: [a7], when: { claim: group, in: [admins, ops] } }
    - { grant: [a8], when: { claim: level, in: [1, 2, 3] } }
    - { grant: [a9], when: { claim: groups, contains: staff } }
    - { grant: [a10], when: { claim: nums, contains: 2 } }
    - { grant: [a11], when: { claim: groups, contains_any: [x, staff] } }
    - { grant: [a12], when: { claim: groups, contains_all: [staff, admins] } }
    - { grant: [a13], when: { claim: email, matches: '@example\.com$' } }
    - { grant: [a14], when: { claim: groups, matches: '(?i)^st' } }
    - { grant: [a15], when: { claim: email, exists: true } }
    - { grant: [a16], when: { claim: nothing, exists: false } }
    - { grant: [a17], when: { claim: profile.dept, equals: "R&D" } }
    - { grant: [a18], when: { claim: $email_verified, equals: true } }
    - { grant: [a19], when: { claim: $groups, contains: admins } }
    - { grant: [a20], when: { not: { claim: group, equals: staff } } }
    - { grant: [a21], when: { all: [{ claim: group, equals: admins }, { claim: level, equals: 3 }] } }
    - grant: [a22]
      when:
        any: [{ claim: group, equals: x }, { claim: level, equals: 3 }, { claim: email, matches: "é" },
              { claim: flags, contains: true }]
    - { grant: [a23], when: { provider: [oidc, keycloak] } }
    - { grant: [a24], when: { issuer: "https://idp.test" } }
    - { grant: [a25], when: { claim: tags, contains_any: [1, "1", true] } }
    - { grant: [a26], when: { claim: tags, contains_all: [x, 1] } }
    - { grant: [a27], when: { claim: group, contains: admins } }
    - { grant: [a28], when: { claim: tags, in: [x, y] } }
    - { name: named, grant: [a29, a29b, a29], when: { claim: profile, equals: x } }
    - { grant: [a30] }
    - { grant: [a31], when: { claim: groups, exists: true } }
    - { grant: [a32], when: { claim: "$username", in: [ada, "ADA"] } }
    - { grant: [a33], when: { claim: tags, equals: 1 } }
    - { grant_from: groups, only: [staff, admins, ops] }
    - { grant_from: groups, transform: [{ replace: { pattern: "^/", with: "" } }, lower, { prefix: "g-" }] }
    - { grant_from: tags, transform: [lower] }
    - { grant_from: tags, transform: [strip, { prefix: "t-" }], only: [t-x, t-1, t-staff] }
    - { grant_from: group, grant: [from-group], only: [root, staff] }
    - { grant: [admin], allow_privileged: true, when: { claim: group, equals: root } }
deny:
  - { when: { claim: blocked, equals: true }, code: blocked, message: go away }
  - { name: bad, when: { claim: email, matches: '@(spam|junk)\.example$' }, code: bad_domain }
  - { when: { all: [{ claim: group, equals: evil }, { claim: level, equals: 666 }] }, code: evil }
providers:
  keycloak:
    attributes:
      level: { from: level, transform: [] , default: 1 }
      realm: { from: realm_access.roles, transform: [first, upper] }
    roles:
      default: [kc]
      rules:
        - { grant: [kc-admin], when: { claim: realm_access.roles, contains: realm-admin } }
    deny:
      - { when: { claim: realm_access.roles, contains: banned }, code: kc_banned }
issuers:
  "https://idp.test":
    roles:
      rules:
        - { grant: [from-idp], when: { claim: "$issuer", equals: "https://idp.test" } }
"""

REQUIRED = """
version: 1
attributes:
  email: { from: [$email, email], transform: [strip, lower, localpart], required: true }
  team:  { from: team, required: true, default: "{group}" }
roles:
  sync: additive
  rules:
    - { grant: [x], when: { claim: team, exists: true } }
"""

WORDS = [
    "admins", "ADMINS", "admin", "Admin", "xadminsx", "staff", "staffs", "/staff", "/Team-1", "ops", "x", "y",
    "xy", "1", "1.0", "3", "true", "True", "root", "evil", "", " a ", "é", "\u0130", "\u212a", "R&D",
    "ada@example.com", "ADA@example.com ", "ada@example.com\n", "a@spam.example", "no-at", "@", "a,b, ,c",
    "realm-admin", "banned", "bad role", "\ud800", "k" * 1100,
]  # fmt: skip
SCALAR = st.one_of(
    st.sampled_from(WORDS), st.booleans(), st.integers(-3, 700), st.sampled_from([3.0, 1.0, 0.5]), st.none()
)
VALUE = st.recursive(
    SCALAR,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["dept", "roles", "x"]), inner)
    ),
    max_leaves=6,
)
CLAIM_NAMES = ["group", "groups", "email", "level", "flags", "profile", "tags", "csv", "name", "given_name",
               "family_name", "dept", "nums", "verified", "blocked", "team", "realm_access"]  # fmt: skip
CLAIMS = st.dictionaries(st.sampled_from(CLAIM_NAMES), VALUE, max_size=12).map(
    lambda claims: {"iss": "https://idp.test", "sub": "u1", **claims}
)


@dataclass
class _User:
    attributes: dict[str, Any] = field(default_factory=dict)
    roles: frozenset[str] = frozenset()


USERS = st.one_of(
    st.none(),
    st.builds(
        _User,
        st.dictionaries(st.sampled_from(["email", "username", "first_name", "flag", "level", "slug"]), VALUE),
        st.frozensets(st.sampled_from(["member", "owner", "a1", "legacy", "admin", "g-staff"])),
    ),
)
SINK = MappingRules.from_yaml(KITCHEN_SINK, file="sink.yaml")
MAPPINGS = {
    "sink": SINK,
    "required": MappingRules.from_yaml(REQUIRED, file="required.yaml"),
    "benchmark": MappingRules.from_dict(fifty_rules()),
    **{path.stem: MappingRules.from_file(path) for path in sorted(EXAMPLES.glob("*.yaml"))},
}


def _same_result(new: MappingResult, old: MappingResult) -> None:
    assert new.denied == old.denied
    assert [(k, type(v), v) for k, v in new.attributes.items()] == [
        (k, type(v), v) for k, v in old.attributes.items()
    ]
    assert (new.roles, new.granted, new.revoked) == (old.roles, old.granted, old.revoked)
    assert new.trace == old.trace
    assert new == old


def _both(mapping: MappingRules, call: Callable[[], MappingResult]) -> tuple[MappingResult, MappingResult]:
    seen: list[Any] = []
    real = mapping_module.run

    def spy(plan: Any, ctx: Any, existing: Any) -> MappingResult:
        seen.append((ctx, existing))
        return real(plan, ctx, existing)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mapping_module, "run", spy)
        new = call()
    ((ctx, existing),) = seen
    return new, oracle_run(mapping, ctx, existing)


@pytest.mark.parametrize("provider", ["oidc", "keycloak"])
@settings(max_examples=1500, deadline=None)
@given(claims=CLAIMS, user=USERS)
def test_every_rule_kind_gives_what_the_engine_before_gave(
    provider: str, claims: dict[str, Any], user: _User | None
) -> None:
    new, old = _both(SINK, lambda: SINK.apply_claims(claims, provider=provider, existing=user))
    _same_result(new, old)


@pytest.mark.parametrize("name", sorted(MAPPINGS))
@pytest.mark.parametrize("provider", ["oidc", "keycloak", "azure_ad"])
@settings(max_examples=100, deadline=None)
@given(claims=CLAIMS, user=USERS)
def test_every_mapping_gives_what_the_engine_before_gave(
    name: str, provider: str, claims: dict[str, Any], user: _User | None
) -> None:
    mapping = MAPPINGS[name]
    new, old = _both(mapping, lambda: mapping.apply_claims(claims, provider=provider, existing=user))
    _same_result(new, old)


def test_the_benchmark_token_gives_what_the_engine_before_gave() -> None:
    token = typical_token()
    for mapping in MAPPINGS.values():
        for user in (None, BenchUser(), _User({"email": "x"}, frozenset({"admin", "owner"}))):
            new, old = _both(mapping, lambda m=mapping, u=user: m.apply(token, u))
            _same_result(new, old)


def test_the_trace_is_built_once_when_read_and_is_the_same_every_time() -> None:
    result = SINK.apply_claims({"iss": "https://idp.test", "sub": "u1", "group": "admins", "level": 3})
    assert "_trace" in vars(result) and type(vars(result)["_trace"]) is not tuple  # nothing built yet
    first = result.trace
    assert type(vars(result)["_trace"]) is tuple and result.trace is first
    assert [t.rule for t in first][:3] == ["deny[0]", "deny[1]", "deny[2]"]
    assert ("granted", 'group equals "admins" -> a1') in [(t.outcome, t.detail) for t in first]
    assert dataclasses.replace(result, denied="x").trace == first
    assert pickle.loads(pickle.dumps(dataclasses.replace(result, attributes={}))).trace == first


def test_a_path_is_resolved_once_per_apply_however_many_rules_read_it() -> None:
    calls: list[str] = []

    class Counting(dict[str, Any]):
        def get(self, key: str, default: Any = None) -> Any:
            calls.append(key)
            return super().get(key, default)

    MAPPINGS["benchmark"].apply_claims(Counting({"iss": "https://idp.test", "sub": "u1", "department": "d1"}))
    assert calls.count("department") == 1  # six rules and an attribute read it


def test_a_plugin_name_is_resolved_when_a_rule_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A provider plugin's $ name runs plugin code: never ahead of the rule that reads it."""

    class AcmeConfig(providers.OidcIssuerConfig):
        provider: Literal["acme"] = "acme"  # type: ignore[assignment]

    read: list[Mapping[str, Any]] = []

    def values(claims: Mapping[str, Any]) -> Mapping[str, Any]:
        read.append(claims)
        return {"org": claims.get("acme_org")}

    plugins.names()  # the registry loaded, then one plugin added for this test only
    plugin = plugins.ProviderPlugin(name="acme", model=AcmeConfig, vocabulary={"org": "o"}, values=values)
    monkeypatch.setitem(plugins._REGISTRY, "acme", plugin)
    mapping = MappingRules.from_yaml(
        """
        version: 1
        attributes:
          org: { from: [$org, sub] }
        roles:
          sync: additive
          rules:
            - { grant: [o7], when: { claim: $org, equals: org-7 } }
            - { grant_from: $org, only: [org-7] }
        deny:
          - { when: { all: [{ claim: sub, equals: nobody }, { claim: $org, exists: true }] }, code: x }
        """
    )
    identity = SimpleNamespace(
        email=None, email_verified=False, username=None, groups=(), roles=(), groups_overage=False
    )
    token = SimpleNamespace(
        claims=MappingProxyType({"sub": "u1", "acme_org": "org-7"}),
        identity=identity,
        provider="acme",
        issuer="https://idp.acme.test",
        subject="u1",
        token_type="id",
    )
    new, old = _both(mapping, lambda: mapping.apply(token))  # type: ignore[arg-type]
    _same_result(new, old)
    assert new.attributes["org"] == "org-7" and new.roles == {"o7", "org-7"}
    read.clear()
    mapping.apply(token)  # type: ignore[arg-type]
    assert len(read) == 3  # the attribute, the rule and grant_from; the deny's all stopped at sub


EDGES: list[tuple[str, dict[str, Any], _User | None]] = [
    ("sink", {"tags": ["Admin", "ops", "x" * 200, " y"], "group": "root"}, None),  # refused, dropped
    ("sink", {"tags": ["Admin", 7, None], "groups": ["ops", 7, None, ["x"]]}, None),
    ("sink", {"tags": ["a@", "b"], "groups": ["a@b@c", "x@y"]}, None),  # which step fails first
    ("sink", {"groups": ["a@b", "/" + "k" * 1100], "tags": ["/x@y", "no-at"]}, None),
    ("sink", {"group": "xadminsx", "groups": "/staff", "tags": "xy", "flags": "11", "email": "@"}, None),
    ("sink", {"group": ["admins"], "groups": ("staff",), "tags": ["x", 1.0], "level": "3"}, None),
    (
        "sink",
        {"group": "admins", "level": 3, "email": "ADA@example.com "},
        _User({"email": "ada@example.com"}, frozenset({"legacy", "owner", "a1"})),
    ),
    (
        "sink",
        {"name": "Ada  Lovelace", "given_name": "Ada"},
        _User({"first_name": "", "slug": "u-ada-lovelace!"}),
    ),
    (
        "sink",
        {"groups": ["/staff", "admins", "\ud800", "k" * 1100], "email": "k" * 1100 + "@example.com"},
        None,
    ),
    ("sink", {"blocked": True, "group": "admins"}, _User({}, frozenset({"owner", "a1"}))),
    # Texts that fit one by one but not together, and a list with one text too long.
    ("sink", {"groups": ["/" + "k" * 600, "/" + "k" * 600], "tags": [" x", "y", 1, None]}, None),
    ("sink", {"groups": ["/a", "/" + "k" * 1100], "tags": ["staff", ["x"]]}, None),
    ("sink", {"group": "evil", "level": 666}, None),
    ("sink", {"profile": {"dept": "R&D"}, "groups": "staff", "dept": "r&d"}, None),
    ("sink", {"email": "a@spam.example"}, None),
    ("sink", {"csv": "a,b, ,c", "tags": ("x", 1), "nums": [1, 2.0, True], "flags": [True, 1, "1"]}, None),
    ("sink", {"verified": True, "level": True, "tags": True}, _User({"flag": False, "level": 1})),
    ("sink", {"realm_access": {"roles": ["realm-admin", "banned"]}}, None),
    ("sink", {"realm_access": {"roles": ["realm-admin"]}, "given_name": "É", "family_name": "\u0130"}, None),
    ("required", {"team": "t"}, None),
    ("required", {"email": "no-at"}, None),
    ("required", {"email": "ada@example.com", "group": "g"}, _User({"team": "g"})),
]


@pytest.mark.parametrize("provider", ["oidc", "keycloak"])
def test_edge_cases_give_what_the_engine_before_gave(provider: str) -> None:
    outcomes: set[str] = set()
    for name, claims, user in EDGES:
        mapping = MAPPINGS[name]
        full = {"iss": "https://idp.test", "sub": "u1", **claims}
        new, old = _both(
            mapping, lambda m=mapping, c=full, u=user: m.apply_claims(c, provider=provider, existing=u)
        )
        _same_result(new, old)
        outcomes.update(t.outcome for t in new.trace)
    assert outcomes >= {
        "no match",
        "granted",
        "refused",
        "set",
        "unchanged",
        "kept",
        "missing",
        "denied",
        "revoked",
    }


def test_a_privileged_grant_that_escaped_the_loader_is_still_refused_when_applied() -> None:
    """The loader refuses such a rule; a model built without it meets the engine's own check."""
    model = MappingFile.model_validate(
        {
            "version": 1,
            "roles": {
                "sync": "additive",
                "privileged": ["admin"],
                "rules": [{"grant": ["admin", "staff"], "when": {"claim": "group", "equals": "x"}}],
            },
        }
    )
    mapping = MappingRules(model)
    new, old = _both(
        mapping, lambda: mapping.apply_claims({"iss": "https://i.test", "sub": "s", "group": "x"})
    )
    _same_result(new, old)
    assert new.roles == {"staff"}
    assert [t.outcome for t in new.trace] == ["granted", "refused"]


# -- the role index -------------------------------------------------------------------------

INDEXED = """
version: 1
roles:
  sync: authoritative
  protected: [owner]
  privileged: [admin]
  rules:
    - { grant: [g1], when: { claim: groups, contains: staff } }
    - { grant: [g2], when: { claim: groups, equals: admins } }
    - { name: named, grant: [g3, g1], when: { claim: groups, in: [ops, x] } }
    - { grant: [m1], when: { claim: email, matches: '@example\\.com$' } }
    - { grant: [g4], when: { claim: groups, contains_any: [staff, "1"] } }
    - { grant_from: groups, only: [staff, ops] }
    - { grant: [admin], allow_privileged: true, when: { claim: groups, contains: root } }
    - { grant: [g5], when: { claim: groups, equals: "1" } }
    - { grant: [g6], when: { claim: groups, contains: true } }
    - { grant: [d1], when: { claim: dept, equals: r } }
    - { grant: [d2], when: { claim: dept, in: [r, s] } }
    - { grant: [i1], when: { claim: $groups, contains: staff } }
    - { grant: [i2], when: { claim: $groups, contains: ops } }
    - { grant: [i3], when: { claim: $groups, in: [admins, "é"] } }
    - { grant: [i4], when: { claim: $groups, equals: ops } }
    - { grant: [g7], when: { not: { claim: groups, contains: staff } } }
"""
INDEXED_RULES = MappingRules.from_yaml(INDEXED, file="indexed.yaml")


class _OddText(str):
    """A str subclass equal to every text (never from JSON: a caller's own object)."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 7


GROUP_ITEMS = st.one_of(
    st.sampled_from(["staff", "admins", "ops", "x", "1", "root", "é", "", "r", "s"]),
    st.booleans(),
    st.integers(0, 2),
    st.none(),
    st.just(1.0),
    st.lists(st.sampled_from(["staff", "ops"]), max_size=2),
    st.dictionaries(st.sampled_from(["staff"]), st.booleans(), max_size=1),
)
GROUP_VALUES = st.one_of(
    st.lists(GROUP_ITEMS, max_size=8),
    st.lists(st.sampled_from(["staff", "ops", "admins", "q"]), min_size=90, max_size=110),  # past max_items
    st.tuples(GROUP_ITEMS, GROUP_ITEMS),
    GROUP_ITEMS,
)


def test_rules_testing_one_place_for_texts_are_indexed_and_the_rest_are_not() -> None:
    plan = INDEXED_RULES._planner.plan("oidc", "https://idp.test")
    roles = plan.roles
    assert roles is not None
    # groups: the text tests (not the boolean, the regex, grant_from or `not`); $groups: 4.
    assert sorted(len(g.rules) for g in roles.groups) == [4, 6]
    by_size = {len(g.rules): g for g in roles.groups}
    assert by_size[6].index == {
        "staff": ("g1", "g4"),
        "admins": ("g2",),
        "ops": ("g3", "g1"),
        "x": ("g3", "g1"),
        "1": ("g4", "g5"),
        "root": ("admin",),
    }
    assert by_size[6].max_items == 96
    assert sorted(roles.indexed) == [0, 1, 2, 4, 6, 7, 11, 12, 13, 14]
    assert [r.rule for _, _, r in roles.steps] == [
        f"roles.rules[{i}]" for i in (3, 5, 8, 9, 10, 15)
    ]  # dept has two rules: below MIN_INDEXED_RULES, each runs its own check


@settings(max_examples=1500, deadline=None)
@given(groups=GROUP_VALUES, dept=GROUP_ITEMS, user=USERS)
def test_indexed_rules_give_what_the_engine_before_gave(groups: Any, dept: Any, user: _User | None) -> None:
    claims = {
        "iss": "https://idp.test",
        "sub": "u1",
        "groups": groups,
        "dept": dept,
        "email": "a@example.com",
    }
    new, old = _both(INDEXED_RULES, lambda: INDEXED_RULES.apply_claims(claims, existing=user))
    _same_result(new, old)


@pytest.mark.parametrize(
    "groups",
    [
        ["staff", _OddText("zzz")],  # the subclass equals every text: each rule's own check says so
        (_OddText("q"),),
        _OddText("q"),
        ["staff", ["ops"], {"x": 1}],  # unhashable items
        ["ops"] * 97,  # one item past the index's bound
        [],
        "root",
        None,
    ],
)
def test_values_the_index_does_not_answer_give_what_the_engine_before_gave(groups: Any) -> None:
    claims = {"iss": "https://idp.test", "sub": "u1", "groups": groups}
    new, old = _both(INDEXED_RULES, lambda: INDEXED_RULES.apply_claims(claims))
    _same_result(new, old)


def _counted(ran: list[int], i: int, check: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
    """``check``, noting ``i`` in ``ran`` each time it runs."""

    def run(frame: Any) -> str | None:
        ran.append(i)
        return check(frame)

    return run


def test_the_index_answers_without_running_the_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two hundred group rules: a list of plain texts is looked up, no rule's check runs, and
    the trace (which asks each check) is still the one the rules one by one give."""
    rules = [{"grant": [f"r{i}"], "when": {"claim": "groups", "contains": f"/team-{i}"}} for i in range(200)]
    mapping = MappingRules.from_dict({"version": 1, "roles": {"sync": "additive", "rules": rules}})
    plan = mapping._planner.plan("oidc", "https://idp.test")
    assert plan.roles is not None
    (group,) = plan.roles.groups
    ran: list[int] = []

    counting = dataclasses.replace(
        group, rules=tuple((_counted(ran, i, check), roles) for i, (check, roles) in enumerate(group.rules))
    )
    counting_plan = dataclasses.replace(plan, roles=dataclasses.replace(plan.roles, groups=(counting,)))
    monkeypatch.setattr(mapping._planner, "plan", lambda *_: counting_plan)
    claims = {"iss": "https://idp.test", "sub": "u1", "groups": ["/team-3", "/x", "/team-150"]}
    result = mapping.apply_claims(claims)
    assert result.roles == {"r3", "r150"} and ran == []
    assert mapping.apply_claims({**claims, "groups": 7}).roles == frozenset() and len(ran) == 200
    _same_result(*_both(mapping, lambda: mapping.apply_claims(claims)))


# -- the pattern set --------------------------------------------------------------------------

PATTERNED = r"""
version: 1
roles:
  sync: authoritative
  protected: [owner]
  privileged: [admin]
  rules:
    - { grant: [e1], when: { claim: email, matches: '@example\.com$' } }
    - { name: upper, grant: [e2, e1], when: { claim: email, matches: '(?i)^ADMIN' } }
    - { grant: [e3], when: { claim: email, matches: 'é' } }
    - { grant: [admin], allow_privileged: true, when: { claim: email, matches: '^root@' } }
    - { grant: [e4], when: { claim: email, matches: '' } }
    - { grant_from: groups, only: [staff], when: { claim: email, matches: 'x' } }
    - { grant: [l1], when: { claim: groups, matches: '^/team-\d+$' } }
    - { grant: [l2], when: { claim: groups, matches: 'ops' } }
    - { grant: [l3], when: { claim: groups, matches: '^$' } }
    - { grant: [d1], when: { claim: dept, matches: '^r' } }
    - { grant: [d2], when: { claim: dept, matches: 's$' } }
    - { grant: [n1], when: { not: { claim: email, matches: 'x' } } }
    - { grant: [g1], when: { claim: groups, contains: staff } }
"""
PATTERNED_RULES = MappingRules.from_yaml(PATTERNED, file="patterned.yaml")

PATTERN_TEXTS = st.one_of(
    st.sampled_from(["a@example.com", "ADMIN@x.org", "admin-ops@example.com", "root@example.com", "",
                     "x", "/team-12", "/team-1x", "ops", "é@example.com", "rs", "r", "s", "\ud800",
                     "K@example.com"]),
    st.text(alphabet=st.sampled_from("@.axé/-1rsoKk"), max_size=10),
    st.just("a" * (_patterns.MAX_INPUT_LENGTH + 1)),
    st.just("x" * _patterns.MAX_INPUT_LENGTH),
    st.builds(_OddText, st.sampled_from(["q", "ops"])),
)  # fmt: skip
PATTERN_VALUES = st.one_of(
    PATTERN_TEXTS,
    st.lists(
        st.one_of(PATTERN_TEXTS, st.integers(0, 2), st.none(), st.lists(PATTERN_TEXTS, max_size=2)),
        max_size=5,
    ),
    st.tuples(PATTERN_TEXTS, PATTERN_TEXTS),
    st.integers(0, 2),
    st.dictionaries(st.sampled_from(["ops"]), PATTERN_TEXTS, max_size=1),
)


def test_matches_rules_on_one_place_are_searched_together_and_the_rest_are_not() -> None:
    plan = PATTERNED_RULES._planner.plan("oidc", "https://idp.test")
    roles = plan.roles
    assert roles is not None
    # email: five that grant as written (not grant_from, not `not`); groups: three; dept: two,
    # below MIN_SET_RULES, each runs its own check.
    assert [len(p.rules) for p in roles.patterns] == [5, 3]
    email, groups = roles.patterns
    assert email.roles == (("e1",), ("e2", "e1"), ("e3",), ("admin",), ("e4",), ())
    assert groups.roles == (("l1",), ("l2",), ("l3",), ())
    assert sorted(roles.indexed) == [0, 1, 2, 3, 4, 6, 7, 8]
    assert [r.rule for _, _, r in roles.steps] == [f"roles.rules[{i}]" for i in (5, 9, 10, 11, 12)]
    assert _compile.MIN_SET_RULES == 3
    assert INDEXED_RULES._planner.plan("oidc", "https://idp.test").roles.patterns == ()  # type: ignore[union-attr]


@settings(max_examples=1500, deadline=None)
@given(email=PATTERN_VALUES, groups=PATTERN_VALUES, dept=PATTERN_VALUES, user=USERS)
def test_pattern_sets_give_what_the_engine_before_gave(
    email: Any, groups: Any, dept: Any, user: _User | None
) -> None:
    claims = {"iss": "https://idp.test", "sub": "u1", "email": email, "groups": groups, "dept": dept}
    new, old = _both(PATTERNED_RULES, lambda: PATTERNED_RULES.apply_claims(claims, existing=user))
    _same_result(new, old)


@pytest.mark.parametrize(
    "email",
    [
        "admin@example.com",
        "é@example.com",  # not ASCII: each rule's own check
        "a" * (_patterns.MAX_INPUT_LENGTH + 1),  # too long for the set: the checks say why
        ["a@x.org", "ADMIN@y"],
        ["a@x.org", 3, "root@example.com"],  # an item that is not text
        [["admin@example.com"]],
        [_OddText("root@example.com")],
        [],
        7,
        None,
    ],
)
def test_values_the_set_does_not_answer_give_what_the_engine_before_gave(email: Any) -> None:
    for claims in (
        {"iss": "https://idp.test", "sub": "u1", "email": email},
        {"iss": "https://idp.test", "sub": "u1"},
    ):
        new, old = _both(PATTERNED_RULES, lambda c=claims: PATTERNED_RULES.apply_claims(c))  # type: ignore[misc]
        _same_result(new, old)


def _counting_set(mapping: MappingRules, ran: list[int], search: Any = None) -> Any:
    """``mapping``'s plan with its first pattern set's checks counted (and its search replaced)."""
    plan = mapping._planner.plan("oidc", "https://idp.test")
    assert plan.roles is not None
    first = plan.roles.patterns[0]

    counting = dataclasses.replace(
        first,
        rules=tuple((_counted(ran, i, check), roles) for i, (check, roles) in enumerate(first.rules)),
        search=search or first.search,
    )
    patterns = (counting, *plan.roles.patterns[1:])
    return dataclasses.replace(plan, roles=dataclasses.replace(plan.roles, patterns=patterns))


def test_the_set_answers_without_running_the_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[int] = []
    counting_plan = _counting_set(PATTERNED_RULES, ran)
    monkeypatch.setattr(PATTERNED_RULES._planner, "plan", lambda *_: counting_plan)
    claims = {
        "iss": "https://idp.test",
        "sub": "u1",
        "email": "admin@example.com",
        "groups": ["/team-3", "ops"],
    }
    result = PATTERNED_RULES.apply_claims(claims)
    assert result.roles == {"e1", "e2", "e4", "l1", "l2"} and ran == []  # "example" has an x: no n1
    assert PATTERNED_RULES.apply_claims({**claims, "email": "é"}).roles == {"e3", "e4", "l1", "l2", "n1"}
    assert ran == [0, 1, 2, 3, 4]  # not ASCII: each rule of the set ran its own check
    _same_result(*_both(PATTERNED_RULES, lambda: PATTERNED_RULES.apply_claims(claims)))


def test_a_set_run_that_does_not_answer_falls_back_to_each_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[int] = []
    counting_plan = _counting_set(PATTERNED_RULES, ran, search=lambda text: None)
    monkeypatch.setattr(PATTERNED_RULES._planner, "plan", lambda *_: counting_plan)
    claims = {"iss": "https://idp.test", "sub": "u1", "email": "root@example.com"}
    assert PATTERNED_RULES.apply_claims(claims).roles == {"e1", "admin", "e4"}
    assert ran == [0, 1, 2, 3, 4]


def test_a_set_over_its_memory_budget_leaves_each_rule_to_its_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_compile, "set_searcher", lambda patterns: None)
    mapping = MappingRules.from_yaml(PATTERNED, file="patterned.yaml")
    roles = mapping._planner.plan("oidc", "https://idp.test").roles
    assert roles is not None and roles.patterns == ()
    assert len(roles.steps) == len(roles.rules)
    claims = {"iss": "https://idp.test", "sub": "u1", "email": "root@example.com", "groups": "ops"}
    assert mapping.apply_claims(claims).roles == {"e1", "admin", "e4", "l2"}


@settings(max_examples=400, deadline=None)
@given(
    sources=st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=6, unique=True),
    text=TEXT
    | st.sampled_from(["", "a" * _patterns.MAX_INPUT_LENGTH, "/" * (_patterns.MAX_INPUT_LENGTH + 1)]),
)
def test_a_set_finds_the_patterns_that_search_alone_finds(sources: list[str], text: str) -> None:
    patterns = [Pattern(source) for source in sources]
    search = _patterns.set_searcher(patterns)
    assert search is not None
    found = search(text)
    if not text.isascii() or len(text) > _patterns.MAX_INPUT_LENGTH:
        assert found is None
        return
    assert found is not None
    # Each position once, and the sentinel (every value matches the empty pattern) last of all.
    assert sorted(found) == sorted(set(found))
    assert set(found) == {i for i, p in enumerate(patterns) if p.search(text)} | {len(patterns)}


def test_a_set_run_that_reports_nothing_is_a_run_that_did_not_finish(monkeypatch: pytest.MonkeyPatch) -> None:
    """RE2's set has no slower engine: a run out of DFA memory reports no match, not even the
    sentinel's, and the searcher then does not answer (the patterns search one by one)."""

    class Failing:
        """RE2's set program, reporting what a run out of memory reports."""

        def __init__(self, real: Any) -> None:
            self.real = real

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

        def Match(self, text: bytes) -> list[int]:
            return []

    real_set = _patterns.re2.Set.SearchSet

    def failing(options: Any) -> Any:
        compiled = real_set(options)
        compiled._set = Failing(compiled._set)
        return compiled

    search = _patterns.set_searcher([Pattern("a")])
    assert search is not None and sorted(search("a")) == [0, 1] and list(search("b")) == [1]
    monkeypatch.setattr(_patterns.re2.Set, "SearchSet", staticmethod(failing))
    failed = _patterns.set_searcher([Pattern("a")])
    assert failed is not None and failed("a") is None and failed("b") is None


# -- what a grant_from rule records of the texts it met ----------------------------------------

RECORDING = r"""
version: 1
roles:
  sync: additive
  privileged: [admin]
  rules:
    - grant_from: groups
      transform: [{ replace: { pattern: "^/", with: "" } }, lower, { prefix: "g-" }]
      only: [g-staff, g-ops, g-admin]
    - { grant_from: groups, transform: [strip, { replace: { pattern: '[^a-z]+', with: "-" } }] }
    - { grant_from: groups, transform: [{ split: "," }] }
    - { grant_from: tags, grant: [t] }
"""


def _recording() -> MappingRules:
    return MappingRules.from_yaml(RECORDING, file="recording.yaml")


def _rules(mapping: MappingRules) -> tuple[Any, ...]:
    plan = mapping._planner.plan("oidc", "https://idp.test")
    assert plan.roles is not None
    return plan.roles.rules


def _counting_steps(rule: Any) -> list[int]:
    """Count the calls of ``rule``'s transform (a fresh mapping's own rule object)."""
    calls: list[int] = []
    real = rule.transform

    def counted(value: Any) -> Any:
        calls.append(1)
        return real(value)

    object.__setattr__(rule, "transform", counted)  # frozen: this test's own mapping only
    return calls


def test_only_rules_whose_steps_take_each_text_alone_record_them() -> None:
    """Text steps (or none) record; a split, which turns one text into several, does not."""
    recorded = [rule.known is not None for rule in _rules(_recording())]
    assert recorded == [True, True, False, True]


def test_a_text_met_before_takes_no_step_and_gets_the_same_answer() -> None:
    mapping = _recording()
    rule = _rules(mapping)[0]
    calls = _counting_steps(rule)
    claims = {"iss": "https://idp.test", "sub": "u1", "groups": ["/Staff", "/ops", "x", "/ops"]}
    for _ in range(3):
        _same_result(*_both(mapping, lambda: mapping.apply_claims(claims)))
    # the oracle ran its own steps; the engine's ran once, on the first apply
    assert len(calls) == 1
    assert rule.known == {"/Staff": "g-staff", "/ops": "g-ops", "x": ""}
    roles = mapping.apply_claims(claims).roles
    assert {"g-staff", "g-ops"} <= roles and "g-x" not in roles
    _same_result(*_both(mapping, lambda: mapping.apply_claims({**claims, "groups": ["/ops", "/admin"]})))
    assert len(calls) == 2 and rule.known["/admin"] == "g-admin"
    _same_result(*_both(mapping, lambda: mapping.apply_claims({**claims, "groups": "/ops"})))
    assert len(calls) == 2  # a single text is looked up too


def test_texts_that_fail_or_are_long_are_not_recorded() -> None:
    mapping = _recording()
    rules = _rules(mapping)
    over = "/" + "s" * _patterns.MAX_INPUT_LENGTH  # over the pattern input bound: replace refuses it
    long = "/" + "s" * 300  # transforms, but longer than a recorded text may be
    for groups in (["/staff", over], [long, "/ops"], [long, "/ops"], ["/staff", over]):
        claims = {"iss": "https://idp.test", "sub": "u1", "groups": groups}
        new, old = _both(mapping, lambda c=claims: mapping.apply_claims(c))
        _same_result(new, old)
    assert over not in rules[0].known and long not in rules[0].known and long not in rules[1].known
    assert "/staff" not in rules[0].known  # its list did not transform: nothing of it recorded
    assert rules[0].known == {"/ops": "g-ops"}


def test_a_full_record_stops_growing_and_new_texts_still_take_the_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine, "MAX_KNOWN_TEXTS", 5)
    mapping = _recording()
    rule = _rules(mapping)[0]
    for start in range(0, 30, 3):
        claims = {"iss": "https://idp.test", "sub": "u1",
                  "groups": [f"/x{start}", f"/x{start + 1}", "/staff" if start % 2 else "/ops"]}  # fmt: skip
        _same_result(*_both(mapping, lambda c=claims: mapping.apply_claims(c)))
        assert len(rule.known) <= 5
    assert len(rule.known) == 5
    claims = {"iss": "https://idp.test", "sub": "u1", "groups": ["/x29", "/Staff"]}  # "/Staff": new
    new, old = _both(mapping, lambda: mapping.apply_claims(claims))
    _same_result(new, old)
    assert "g-staff" in new.roles and "/Staff" not in rule.known


def test_values_the_record_does_not_answer_get_what_the_engine_before_gave() -> None:
    """A str subclass equal to every text, non-text items, nested lists, tuples, objects,
    a list past the bound: each takes the steps, as the rules did before."""
    mapping = _recording()
    warm = {
        "iss": "https://idp.test",
        "sub": "u1",
        "groups": ["/staff", "/ops", "zzz"],
        "tags": ["admin", "t"],
    }
    mapping.apply_claims(warm)
    for groups in (
        ["/staff", _OddText("zzz")],
        (_OddText("/ops"),),
        _OddText("/staff"),
        ["/staff", 1, None],
        ["/staff", ["/ops"]],
        ("/staff", "/ops"),
        {"/staff": 1},
        ["/ops"] * (engine.MAX_DYNAMIC_ROLES * 5 + 1),
        ["/ops"] * (engine.MAX_DYNAMIC_ROLES + 3),
    ):
        claims = {**warm, "groups": groups}
        _same_result(*_both(mapping, lambda c=claims: mapping.apply_claims(c)))


def test_a_list_past_the_bound_records_nothing() -> None:
    """Past its first MAX_DYNAMIC_ROLES * 5 items a list's texts are not used (nor looked
    at): a text there must not be recorded as dropped for the tokens that follow."""
    mapping = _recording()
    rule = _rules(mapping)[0]
    past = ["/x"] * (engine.MAX_DYNAMIC_ROLES * 5) + ["/ops"]
    for groups in (past, ["/ops"]):
        claims = {"iss": "https://idp.test", "sub": "u1", "groups": groups}
        _same_result(*_both(mapping, lambda c=claims: mapping.apply_claims(c)))
    assert "g-ops" in mapping.apply_claims({"iss": "https://idp.test", "sub": "u1", "groups": ["/ops"]}).roles
    assert rule.known == {"/ops": "g-ops"}


RECORDED_TEXTS = st.lists(
    st.one_of(
        st.sampled_from(WORDS), st.builds(_OddText, st.sampled_from(["/staff", "x"])), st.integers(0, 2)
    ),
    max_size=6,
)
RECORDING_RULES = MappingRules.from_yaml(RECORDING, file="recording.yaml")  # records across examples


@settings(max_examples=800, deadline=None)
@given(groups=st.one_of(RECORDED_TEXTS, st.sampled_from(WORDS)), tags=RECORDED_TEXTS)
def test_recorded_texts_give_what_the_engine_before_gave(groups: Any, tags: Any) -> None:
    claims = {"iss": "https://idp.test", "sub": "u1", "groups": groups, "tags": tags}
    _same_result(*_both(RECORDING_RULES, lambda: RECORDING_RULES.apply_claims(claims)))
