"""Mapping benchmark: the time to apply a compiled mapping to one verified token.

Run from the repository root::

    python benchmarks/mapping.py            # ~5 s
    python benchmarks/mapping.py --quick    # a rough look
    python benchmarks/mapping.py --profile  # also: a cProfile summary of the 50-rule apply

What is measured (docs/performance.md, section "Mapping"):

* ``Mapping.apply(token, existing)`` on a typical Keycloak id token (realm and
  client roles, ten groups, profile claims; about 1 KB of JSON) for an
  existing user, so update policies and role sync run too;
* four mappings: a 50-rule mapping (10 attributes, 5 deny rules, 35 role
  rules mixing contains, contains_any, equals, in, matches, exists, not, all,
  any and grant_from with transforms), the Keycloak example
  (examples/mappings/keycloak.yaml), 200 rules "this group grants that role"
  (the commonest shape, at scale), and a one-rule mapping (the fixed cost);
* the same 50 rules written out by hand for this token (no engine, no trace, the
  same RE2 programs): the least the engine's answer costs in Python;
* the same 50 rules again, their ``grant_from`` rule's record of the texts it met
  filled with 2048 other groups first: every group of the token runs the steps (a
  deployment whose group vocabulary is larger than the record);
* interleaved: every round runs each case for a batch of applies, in a
  rotating order; the figure is the median over rounds of the time per apply;
* the scale: a raw RS256 signature check straight on ``cryptography`` (RSA
  2048, a ~1 KB signing input; the baseline of benchmarks/run.py: split the
  token, base64url-decode the signature, verify) runs in the same rounds, over
  a batch of distinct pre-signed tokens. Each case's ratio to it is the median
  of the per-round ratios (paired: both ran within milliseconds, under the
  same load), which is what to read on a shared machine.

The token is verified once before timing (verification has its own benchmark,
benchmarks/run.py); the mapping is compiled once, as in an application.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from federation import VerifiedToken
from federation.mapping import Mapping, MappingResult
from federation.testing import FrozenClock, MockIdP

ROOT = Path(__file__).resolve().parents[1]
NOW = 1_800_000_000
ISSUER = "https://sso.example.com/realms/acme"


def fifty_rules() -> dict[str, Any]:
    """10 attributes, 5 deny rules, 35 role rules: 50 rules in all."""
    attributes = {
        "email": {"from": "$email", "transform": ["strip", "lower"], "required": True},
        "username": {"from": "$username", "transform": "lower", "update": "on_create"},
        "display_name": {"from": ["name", "{given_name} {family_name}", "$username"]},
        "first_name": {"from": "given_name", "update": "if_empty"},
        "last_name": {"from": "family_name", "update": "if_empty"},
        "locale": {"from": "locale", "default": "en"},
        "department": {"from": "department", "transform": "upper"},
        "employee_id": {"from": "employee.id"},
        "domain": {"from": "$email", "transform": ["lower", "domain"]},
        "slug": {"from": "$username", "transform": [{"replace": {"pattern": "[^a-z0-9]+", "with": "-"}}]},
    }
    deny = [
        {"when": {"not": {"claim": "$email_verified", "equals": True}}, "code": "unverified_email"},
        {"when": {"claim": "blocked", "equals": True}, "code": "blocked"},
        {"when": {"claim": "$groups", "contains": "/suspended"}, "code": "suspended"},
        {"when": {"claim": "email", "matches": r"@(spam|junk)\.example$"}, "code": "bad_domain"},
        {
            "when": {"all": [{"claim": "typ", "equals": "Bearer"}, {"claim": "azp", "equals": "other"}]},
            "code": "c",
        },
    ]
    rules: list[dict[str, Any]] = []
    for i in range(10):
        rules.append({"grant": [f"group-{i}"], "when": {"claim": "$groups", "contains": f"/team-{i}"}})
    for i in range(5):
        rules.append(
            {
                "grant": [f"realm-{i}"],
                "when": {"claim": "realm_access.roles", "contains_any": [f"r{i}", f"s{i}"]},
            }
        )
    for i in range(5):
        rules.append(
            {
                "grant": [f"client-{i}"],
                "when": {"claim": "resource_access.web-app.roles", "contains": f"c{i}"},
            }
        )
    for i in range(5):
        rules.append({"grant": [f"dept-{i}"], "when": {"claim": "department", "in": [f"d{i}", f"e{i}"]}})
    for i in range(4):
        rules.append(
            {"grant": [f"mail-{i}"], "when": {"claim": "$email", "matches": rf"@(sub{i}\.)?example\.com$"}}
        )
    rules.append({"grant": ["has-locale"], "when": {"claim": "locale", "exists": True}})
    rules.append({"grant": ["not-guest"], "when": {"not": {"claim": "$groups", "contains": "/guests"}}})
    rules.append(
        {
            "grant": ["staff"],
            "when": {
                "all": [
                    {"claim": "$email_verified", "equals": True},
                    {"claim": "$groups", "contains": "/staff"},
                ]
            },
        }
    )
    rules.append(
        {
            "grant": ["any"],
            "when": {"any": [{"claim": "x", "exists": True}, {"claim": "$groups", "contains": "/b"}]},
        }
    )
    rules.append(
        {
            "grant_from": "$groups",
            "transform": [{"replace": {"pattern": "^/", "with": ""}}, "lower", {"prefix": "g-"}],
            "only": [f"g-team-{i}" for i in range(10)],
        }
    )
    rules.append(
        {
            "grant": ["admin"],
            "allow_privileged": True,
            "when": {"claim": "realm_access.roles", "contains": "realm-admin"},
        }
    )
    assert len(attributes) + len(deny) + len(rules) == 50
    roles = {
        "sync": "authoritative",
        "default": ["member"],
        "protected": ["owner"],
        "privileged": ["admin"],
        "rules": rules,
    }
    return {"version": 1, "attributes": attributes, "roles": roles, "deny": deny}


def group_rules(count: int) -> dict[str, Any]:
    """``count`` rules of the commonest shape: a group in the token grants a role."""
    rules = [
        {"grant": [f"role-{i}"], "when": {"claim": "$groups", "contains": f"/team-{i}"}} for i in range(count)
    ]
    return {"version": 1, "roles": {"sync": "authoritative", "rules": rules}}


def by_hand() -> Callable[[VerifiedToken, User], tuple[Any, ...]]:
    """The 50 rules written out by hand for this token's shapes: no engine, no trace, the
    same RE2 programs called directly. What the engine's answer costs at the least in
    Python with these dependencies (main() checks it gives the engine's attributes and roles)."""
    from types import MappingProxyType

    from federation.mapping._patterns import _UNANCHORED, compile_pattern

    def search(pattern: str) -> Callable[[str], bool]:
        match = compile_pattern(pattern)._search_raw
        assert match is not None

        def run(text: str) -> bool:
            data = text.encode("ascii")
            return bool(match(_UNANCHORED, data, 0, len(data))[0] != (-1, -1))

        return run

    spam = search(r"@(spam|junk)\.example$")
    mails = [(search(rf"@(sub{i}\.)?example\.com$"), f"mail-{i}") for i in range(4)]
    slug = compile_pattern("[^a-z0-9]+", allow_lazy=False)
    teams = [(f"/team-{i}", f"group-{i}") for i in range(10)]
    realm = [((f"r{i}", f"s{i}"), f"realm-{i}") for i in range(5)]
    client = [(f"c{i}", f"client-{i}") for i in range(5)]
    dept = [((f"d{i}", f"e{i}"), f"dept-{i}") for i in range(5)]
    only = frozenset(f"g-team-{i}" for i in range(10))

    def apply(vt: VerifiedToken, existing: User) -> tuple[Any, ...]:
        c, ident = vt.claims, vt.identity
        email, groups, username = ident.email or "", ident.groups, ident.username or ""
        if ident.email_verified is not True:
            return ("unverified_email",)
        if c.get("blocked") is True:
            return ("blocked",)
        if "/suspended" in groups:
            return ("suspended",)
        mail = c.get("email")
        if type(mail) is str and spam(mail):
            return ("bad_domain",)
        if c.get("typ") == "Bearer" and c.get("azp") == "other":
            return ("c",)
        current, out = existing.attributes, {}
        for name, value in (
            ("email", email.strip().lower()),
            ("display_name", c.get("name")),
            ("locale", c.get("locale") or "en"),
            ("department", str(c.get("department", "")).upper()),
            ("employee_id", (c.get("employee") or {}).get("id")),
            ("domain", email.lower().rpartition("@")[2]),
            ("slug", slug.sub("-", username.lower())),
        ):
            if value and current.get(name) != value:
                out[name] = value
        for name, claim in (("first_name", "given_name"), ("last_name", "family_name")):
            if not current.get(name) and c.get(claim):
                out[name] = c[claim]
        roles = {"member"}
        roles.update(role for text, role in teams if text in groups)
        realm_roles = (c.get("realm_access") or {}).get("roles") or []
        roles.update(role for texts, role in realm if any(x in texts for x in realm_roles))
        client_roles = ((c.get("resource_access") or {}).get("web-app") or {}).get("roles") or []
        roles.update(role for text, role in client if text in client_roles)
        roles.update(role for texts, role in dept if c.get("department") in texts)
        roles.update(role for matches, role in mails if matches(email))
        if c.get("locale") is not None:
            roles.add("has-locale")
        if "/guests" not in groups:
            roles.add("not-guest")
        if ident.email_verified and "/staff" in groups:
            roles.add("staff")
        if c.get("x") is not None or "/b" in groups:
            roles.add("any")
        roles.update(r for r in ("g-" + g.removeprefix("/").lower() for g in groups) if r in only)
        if "realm-admin" in realm_roles:
            roles.add("admin")
        final = frozenset(roles) | (existing.roles & {"owner"})
        return MappingProxyType(out), final, final - existing.roles, existing.roles - final

    return apply


def one_rule() -> dict[str, Any]:
    return {
        "version": 1,
        "roles": {
            "sync": "additive",
            "rules": [{"grant": ["a"], "when": {"claim": "$groups", "contains": "/a"}}],
        },
    }


def typical_token() -> VerifiedToken:
    """A Keycloak id token, minted by a mock realm and verified by a Bridge."""
    clock = FrozenClock(NOW)
    idp = MockIdP(
        issuer=ISSUER, audience="web-app", clock=clock, jwks_path="/realms/acme/protocol/openid-connect/certs"
    )
    config = {"issuers": [{"provider": "keycloak", "base_url": "https://sso.example.com", "realm": "acme",
                           "client_ids": ["web-app"]}]}  # fmt: skip
    claims = {
        "typ": "ID", "azp": "web-app", "sid": "54db1502-a5dc-4a27-af62-eeef0694a628",
        "sub": "8befeac4-8963-49da-a9ac-f310e8d922d8", "auth_time": NOW, "nonce": "n-0S6_WzA2Mj",
        "realm_access": {"roles": ["offline_access", "uma_authorization", "r2", "s4"]},
        "resource_access": {"web-app": {"roles": ["c1", "c3"]}, "account": {"roles": ["manage-account"]}},
        "groups": ["/staff", "/team-1", "/team-4", "/team-7", "/eng", "/eng/platform", "/oncall", "/pto",
                   "/berlin", "/all"],
        "email_verified": True, "name": "Pat Teacher", "preferred_username": "pat.teacher",
        "given_name": "Pat", "family_name": "Teacher", "email": "Pat.Teacher@example.com",
        "locale": "de", "department": "d3", "employee": {"id": "E-1042"},
    }  # fmt: skip
    with idp.bridge(config=config) as bridge:
        token = bridge.verify(idp.mint(claims))
    idp.close()
    return token


class User:
    attributes = {"email": "pat.teacher@example.com", "username": "pat.teacher", "first_name": "Pat"}
    roles = frozenset({"member", "owner", "group-1", "legacy"})


RAW = "raw cryptography RS256 verify (the scale)"


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64d(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def raw_rs256(count: int) -> Callable[[], object]:
    """benchmarks/run.py's raw baseline: signature only, straight on cryptography.

    ``count`` distinct tokens (RSA 2048, signing input ~1 KB), signed before timing;
    every call verifies the next one: split, base64url-decode the signature, verify.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pad, hash_alg = padding.PKCS1v15(), hashes.SHA256()
    header = _b64e(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "k1"}).encode())
    tokens = []
    for i in range(count):
        payload = {"iss": ISSUER, "sub": f"user-{i}", "aud": "web-app", "iat": NOW, "exp": NOW + 300,
                   "pad": "x" * 580}  # fmt: skip
        signing_input = f"{header}.{_b64e(json.dumps(payload).encode())}"
        tokens.append(f"{signing_input}.{_b64e(key.sign(signing_input.encode(), pad, hash_alg))}")
    assert 950 <= len(tokens[0].rpartition(".")[0]) <= 1100, len(tokens[0].rpartition(".")[0])
    verify = key.public_key().verify
    state = {"i": 0}

    def check_rsa() -> object:
        i = state["i"]
        state["i"] = (i + 1) % count
        signing_input, _, sig = tokens[i].rpartition(".")
        verify(_b64d(sig), signing_input.encode(), pad, hash_alg)
        return True

    return check_rsa


def measure(cases: dict[str, Callable[[], object]], rounds: int, batch: int) -> dict[str, list[float]]:
    names = list(cases)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for fn in cases.values():  # warm up: compile lazily built plans and DFA states
        for _ in range(200):
            fn()
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            if r % 2:
                order.reverse()
            for name in order:
                fn = cases[name]
                start = time.perf_counter()
                for _ in range(batch):
                    fn()
                samples[name].append((time.perf_counter() - start) / batch * 1e6)
    finally:
        if gc_was:
            gc.enable()
    return samples


def profile(apply: Callable[[], MappingResult], count: int) -> None:
    """A cProfile summary of ``count`` applies (the trace not read, as in the timing)."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    for _ in range(count):
        apply()
    prof.disable()
    print(f"\ncProfile of the 50-rule apply, {count} applies (top 25 by tottime):\n")
    pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument(
        "--profile", action="store_true", help="also print a cProfile summary of the 50-rule apply"
    )
    args = parser.parse_args()
    rounds, batch = (15, 200) if args.quick else (60, 500)

    token = typical_token()
    user = User()
    big = Mapping.from_dict(fifty_rules())
    keycloak = Mapping.from_file(ROOT / "examples" / "mappings" / "keycloak.yaml")
    small = Mapping.from_dict(one_rule())
    groups = Mapping.from_dict(group_rules(200))
    hand = by_hand()
    # The same 50 rules, with their grant_from record full of texts other than this token's
    # groups (a deployment with a vocabulary of thousands): every group takes the steps.
    crowded = Mapping.from_dict(fifty_rules())
    for start in range(0, 2200, 100):
        claims = {**token.claims, "groups": [f"/other-{i}" for i in range(start, start + 100)]}
        crowded.apply_claims(claims, provider=token.provider, issuer=token.issuer, existing=user)
    plan = crowded._planner.plan(token.provider, token.issuer)
    assert plan.roles is not None
    (record,) = [rule.known for rule in plan.roles.rules if rule.grant_from is not None]
    assert record is not None and len(record) >= 2048 and not set(token.identity.groups) & set(record)
    result = big.apply(token, user)
    assert result.allowed and "staff" in result.roles and "group-4" in result.roles, result
    assert len([t for t in result.trace if t.rule.startswith(("roles.rules", "deny", "attributes"))]) == 50
    assert hand(token, user) == (result.attributes, result.roles, result.granted, result.revoked)
    assert crowded.apply(token, user) == result
    assert groups.apply(token, user).roles == {"role-1", "role-4", "role-7"}
    cases: dict[str, Callable[[], object]] = {
        RAW: raw_rs256(batch),
        "50 rules (10 attributes, 5 deny, 35 role rules)": lambda: big.apply(token, user),
        "the same 50 rules written by hand (no engine)": lambda: hand(token, user),
        "50 rules, groups not recorded (a full record)": lambda: crowded.apply(token, user),
        "examples/mappings/keycloak.yaml (12 rules)": lambda: keycloak.apply(token, user),
        "200 group rules ($groups contains)": lambda: groups.apply(token, user),
        "1 role rule (fixed cost)": lambda: small.apply(token, user),
    }
    samples = measure(cases, rounds, batch)
    print(f"federation-bridge mapping benchmark  (Python {platform.python_version()}, {platform.machine()}, "
          f"{rounds} interleaved rounds x {batch} calls)")  # fmt: skip
    print()
    print(f"{'case':<50} {'median µs/call':>15} {'p10':>8} {'p90':>8} {'x raw (paired)':>15} {'IQR':>12}")
    raw = samples[RAW]
    for name, values in samples.items():
        deciles = statistics.quantiles(values, n=10)
        ratio = ""
        spread = ""
        if name != RAW:
            ratios = [v / r for v, r in zip(values, raw, strict=True)]
            q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
            ratio = f"{statistics.median(ratios):.2f}x"
            spread = f"{q1:.2f}-{q3:.2f}"
        print(
            f"{name:<50} {statistics.median(values):>15.1f} {deciles[0]:>8.1f} {deciles[-1]:>8.1f} "
            f"{ratio:>15} {spread:>12}"
        )
    if args.profile:
        profile(cases["50 rules (10 attributes, 5 deny, 35 role rules)"], 20 * batch)


if __name__ == "__main__":
    main()
