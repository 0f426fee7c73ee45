"""Verification benchmark: federation-bridge against raw ``cryptography``, PyJWT and joserfc.

Run from the repository root::

    python benchmarks/run.py              # full run (~25 s on a 2-core machine)
    python benchmarks/run.py --quick      # a rough look in a few seconds
    python benchmarks/run.py --profile    # also: where bridge.verify spends its time
    python benchmarks/run.py --instructions   # instead: instructions per token (callgrind)

What is measured (docs/performance.md explains why):

* the time to verify one *first-seen* token with the issuer's keys already
  cached: every measurement runs over a batch of distinct pre-minted tokens,
  so no cache of verified tokens could help any implementation;
* implementations are measured *interleaved*: in every round each one runs
  the round's batch back to back, in a rotating order; the time per token is
  the median over rounds, and the ratio to raw is the median of the per-round
  ratios (paired: both ran within milliseconds, under the same load). Shared
  machines are noisy; a run whose ratios spread too widely is flagged;
* every implementation checks the same things (signature, ``exp``, ``iat``,
  ``aud``, ``iss``, ``sub`` present, with 60 s leeway), and is shown once to
  accept a good token and to reject a forged signature, forged claims, an
  expired token, a wrong audience and a wrong issuer before it is timed.

The baseline ("raw") is the signature check alone with ``cryptography``:
split the token, base64url-decode the signature, verify the signing input
with the already-loaded public key (ECDSA: raw R||S converted to DER).
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from federation.errors import MalformedToken
from federation.testing import MockIdP

try:
    import jwt as pyjwt
except ImportError:  # the peer is optional: pip install -e '.[bench]'
    pyjwt = None

try:
    from joserfc import jwt as jose_jwt
    from joserfc.errors import SecurityWarning
    from joserfc.jwk import JWKRegistry
    from joserfc.jwk import KeySet as JoseKeySet
    from joserfc.jwt import JWTClaimsRegistry

    # joserfc flags the RFC 8037 name "EdDSA" (RFC 9864 prefers "Ed25519") on every decode.
    warnings.filterwarnings("ignore", category=SecurityWarning, message="EdDSA is deprecated")
except ImportError:  # pragma: no cover - joserfc is a runtime dependency of the library
    jose_jwt = None

ISSUER = "https://idp.bench.test"
AUDIENCE = "bench-client"
LEEWAY = 60
LIFETIME = 3600  # tokens stay valid for the whole run (real clock everywhere)
ALL_ALGS = ("RS256", "ES256", "EdDSA", "PS256")
INSTALL_HINT = "pip install -e '.[bench]'"

Check = Callable[[str], object]


@dataclass
class Impl:
    name: str
    check: Check
    claims: bool = True  # False for the raw baseline (signature only)


# -- the implementations ------------------------------------------------------------------


def _b64d(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def raw_check(alg: str, public_key: Any) -> Check:
    """Signature only, straight on cryptography: the floor every JWT library sits on."""
    if alg.startswith(("RS", "PS")):
        hash_alg = hashes.SHA256()
        pad = padding.PKCS1v15() if alg.startswith("RS") else padding.PSS(padding.MGF1(hash_alg), 32)
        verify = public_key.verify

        def check_rsa(token: str) -> object:
            signing_input, _, sig = token.rpartition(".")
            verify(_b64d(sig), signing_input.encode(), pad, hash_alg)
            return True

        return check_rsa
    if alg.startswith("ES"):
        ecdsa = ec.ECDSA(hashes.SHA256())
        verify = public_key.verify

        def check_ec(token: str) -> object:
            signing_input, _, sig = token.rpartition(".")
            raw = _b64d(sig)
            der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
            verify(der, signing_input.encode(), ecdsa)
            return True

        return check_ec
    verify = public_key.verify

    def check_ed(token: str) -> object:
        signing_input, _, sig = token.rpartition(".")
        verify(_b64d(sig), signing_input.encode())
        return True

    return check_ed


def pyjwt_check(alg: str, key: Any) -> Check:
    """PyJWT with a pre-loaded key object: its best case (no JWK handling per call)."""
    options = {"require": ["exp", "iat", "iss", "aud", "sub"]}

    def check(token: str) -> object:
        return pyjwt.decode(
            token, key, algorithms=[alg], audience=AUDIENCE, issuer=ISSUER, leeway=LEEWAY, options=options
        )

    return check


def pyjwt_client_check(alg: str, jwks: dict[str, Any]) -> Check:
    """PyJWT the way its docs show it: PyJWKClient (JWK Set cached) picks the key by kid."""

    class CachedClient(pyjwt.PyJWKClient):
        fetches = 0

        def fetch_data(self) -> Any:  # served from memory: no network in the benchmark
            CachedClient.fetches += 1
            return jwks

    client = CachedClient(ISSUER + "/jwks", lifespan=86400)
    options = {"require": ["exp", "iat", "iss", "aud", "sub"]}

    def check(token: str) -> object:
        key = client.get_signing_key_from_jwt(token)
        return pyjwt.decode(
            token, key, algorithms=[alg], audience=AUDIENCE, issuer=ISSUER, leeway=LEEWAY, options=options
        )

    return check


def _jose_registry() -> Any:
    return JWTClaimsRegistry(
        leeway=LEEWAY,
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": AUDIENCE},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
    )


def joserfc_check(alg: str, jwk: dict[str, Any]) -> Check:
    """joserfc with a pre-imported key and a claims registry built once."""
    key = JWKRegistry.import_key(jwk)
    registry = _jose_registry()
    algorithms = [alg]

    def check(token: str) -> object:
        tok = jose_jwt.decode(token, key, algorithms=algorithms)
        registry.validate(tok.claims)
        return tok.claims

    return check


def joserfc_keyset_check(alg: str, jwks: dict[str, Any]) -> Check:
    """joserfc given the whole imported JWK Set: it picks the key by kid."""
    keyset = JoseKeySet.import_key_set(jwks)
    registry = _jose_registry()
    algorithms = [alg]

    def check(token: str) -> object:
        tok = jose_jwt.decode(token, keyset, algorithms=algorithms)
        registry.validate(tok.claims)
        return tok.claims

    return check


def build_impls(alg: str, idp: MockIdP, bridge: Any) -> list[Impl]:
    signer = idp.key_for(alg)
    public_key = signer.private_key.public_key()
    jwks = idp.jwks()
    impls = [Impl("raw cryptography", raw_check(alg, public_key), claims=False)]
    if pyjwt is not None:
        impls.append(Impl("PyJWT (key object)", pyjwt_check(alg, public_key)))
        impls.append(Impl("PyJWT (PyJWKClient, cached)", pyjwt_client_check(alg, jwks)))
    if jose_jwt is not None:
        impls.append(Impl("joserfc (imported key)", joserfc_check(alg, signer.public_jwk)))
        impls.append(Impl("joserfc (KeySet)", joserfc_keyset_check(alg, jwks)))
    impls.append(Impl("federation-bridge", bridge.verify))
    return impls


# -- honesty checks -------------------------------------------------------------------------


def _flip(segment: str, at: int) -> str:
    c = segment[at]
    return segment[:at] + ("B" if c != "B" else "C") + segment[at + 1 :]


def _forged_claims(token: str) -> str:
    h, p, s = token.split(".")
    claims = json.loads(_b64d(p))
    claims["sub"] = "admin"
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{h}.{body}.{s}"


def assert_honest(impl: Impl, idp: MockIdP, alg: str) -> None:
    """The implementation accepts a good token and rejects each kind of bad one."""
    good = idp.mint(alg=alg, lifetime=LIFETIME)
    result = impl.check(good)
    assert result, f"{impl.name}: did not accept a good {alg} token"
    h, p, s = good.split(".")
    bad = {"forged signature": f"{h}.{p}.{_flip(s, len(s) // 2)}", "forged claims": _forged_claims(good)}
    if impl.claims:
        bad["expired"] = idp.mint(alg=alg, expired=True)
        bad["wrong audience"] = idp.mint(alg=alg, lifetime=LIFETIME, aud="someone-else")
        bad["wrong issuer"] = idp.mint(alg=alg, lifetime=LIFETIME, iss="https://evil.test")
        bad["no sub"] = idp.mint(alg=alg, lifetime=LIFETIME, sub=None)
    for what, token in bad.items():
        try:
            impl.check(token)
        except Exception:  # each library raises its own error types
            continue
        raise AssertionError(f"{impl.name}: accepted a token with {what} ({alg})")


# -- measurement -----------------------------------------------------------------------------


def time_batch(
    check: Check,
    tokens: Sequence[str],
    expect_error: type[BaseException] | None = None,
    *,
    collect: bool = True,
) -> float:
    """Nanoseconds per call over ``tokens`` (GC off during the batch, as timeit does).

    ``collect``: run a full collection first, so none is due during the batch (it also
    leaves the caches cold: the caller that turns it off collects elsewhere)."""
    if collect:
        gc.collect()
    gc.disable()
    try:
        if expect_error is None:
            start = time.perf_counter_ns()
            for token in tokens:
                check(token)
            elapsed = time.perf_counter_ns() - start
        else:
            start = time.perf_counter_ns()
            for token in tokens:
                try:
                    check(token)
                except expect_error:
                    pass
            elapsed = time.perf_counter_ns() - start
    finally:
        gc.enable()
    return elapsed / len(tokens)


def interleaved(
    impls: Sequence[Impl],
    batches: Sequence[Sequence[str]],
    expect_error: type[BaseException] | None = None,
) -> dict[str, list[float]]:
    """Round r runs every implementation on batch r, in an order rotated by r."""
    samples: dict[str, list[float]] = {i.name: [] for i in impls}
    n = len(impls)
    for r, batch in enumerate(batches):
        order = [impls[(r + k) % n] for k in range(n)]
        if r % 2:
            order.reverse()
        for impl in order:
            samples[impl.name].append(time_batch(impl.check, batch, expect_error))
    return samples


def mint_batches(idp: MockIdP, alg: str, rounds: int, batch: int) -> list[list[str]]:
    tokens = [idp.mint(alg=alg, lifetime=LIFETIME) for _ in range(rounds * batch)]
    assert len(set(tokens)) == len(tokens), "tokens must be distinct"
    return [tokens[r * batch : (r + 1) * batch] for r in range(rounds)]


def paired(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """Round-by-round ratios a[r] / b[r]: both ran back to back, under the same load."""
    return [x / y for x, y in zip(a, b, strict=True)]


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], statistics.median(values), q[2]


# -- report ----------------------------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _checkout() -> str:
    """The commit being measured (and whether the library's sources differ from it)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "federation", "providers"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return f" @ {commit}{' + local changes' if dirty else ''}"


def header(rounds: int, batch: int) -> str:
    return (
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"cryptography {_version('cryptography')}, "
        f"PyJWT {_version('PyJWT') if pyjwt is not None else 'not installed'}, "
        f"joserfc {_version('joserfc')}, federation-bridge {_version('federation-bridge')}{_checkout()}\n"
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{'/'.join(f'{x:.1f}' for x in os.getloadavg()) if hasattr(os, 'getloadavg') else 'n/a'} at start; "
        f"{rounds} interleaved rounds x {batch} distinct first-seen tokens per implementation; "
        f"median per implementation"
    )


def verify_table(rounds: int, batch: int, algs: Sequence[str]) -> dict[str, dict[str, list[float]]]:
    idp = MockIdP(issuer=ISSUER, audience=AUDIENCE, alg=algs[0], algorithms=list(algs))
    bridge = idp.bridge()
    report = bridge.warm_up()
    assert report.ok, report.failed
    results: dict[str, dict[str, list[float]]] = {}
    noisy: list[str] = []
    print(
        "| alg | implementation | µs/token (median) | IQR µs | ratio vs raw | ratio IQR "
        "| ratio of medians | ÷ library |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for alg in algs:
        impls = build_impls(alg, idp, bridge)
        for impl in impls:
            assert_honest(impl, idp, alg)
        batches = mint_batches(idp, alg, rounds + 1, batch)
        interleaved(impls, batches[:1])  # warm-up round, discarded
        samples = interleaved(impls, batches[1:])
        results[alg] = samples
        raw_name = impls[0].name
        raw = statistics.median(samples[raw_name])
        lib_samples = samples["federation-bridge"]
        for impl in impls:
            q1, med, q3 = quartiles(samples[impl.name])
            # Paired: each round's time over the same round's raw time, then the median.
            r1, ratio, r3 = quartiles(paired(samples[impl.name], samples[raw_name]))
            vs_lib = statistics.median(paired(samples[impl.name], lib_samples))
            if impl.name != raw_name and (ratio < 1.0 or (r3 - r1) > 0.25 * ratio):
                noisy.append(f"{alg} {impl.name}")
            print(
                f"| {alg} | {impl.name} | {med / 1000:.1f} | {q1 / 1000:.1f}-{q3 / 1000:.1f} "
                f"| {ratio:.2f} | {r1:.2f}-{r3:.2f} | {med / raw:.2f} | {vs_lib:.2f} |"
            )
        sys.stdout.flush()
    if noisy:
        print(
            f"\nWARNING: noisy run (ratio below 1.00 or ratio IQR wider than 25% for: {', '.join(noisy)}); "
            "the machine was busy - rerun when it is idle."
        )
    if pyjwt is None:
        print(f"\nPyJWT rows skipped: PyJWT is not installed ({INSTALL_HINT}).")
    peers = [n for n in next(iter(results.values())) if n.startswith(("PyJWT", "joserfc"))]
    if peers:
        print()
        for alg, samples in results.items():
            fastest = min(peers, key=lambda n: statistics.median(samples[n]))
            lib = statistics.median(paired(samples["federation-bridge"], samples[fastest]))
            print(f"- {alg}: federation-bridge / fastest peer ({fastest}) = {lib:.2f} (paired per round)")
    return results


def garbage_table(rounds: int) -> None:
    """Rejecting garbage: a 1 MiB token must cost about what a short one does."""
    idp = MockIdP(issuer=ISSUER, audience=AUDIENCE)
    bridge = idp.bridge()
    assert bridge.warm_up().ok
    mib = 1024 * 1024
    third = mib // 3
    cases = {
        "short garbage (`not-a-token`)": "not-a-token",
        "1 MiB of `A` (str)": "A" * mib,
        "1 MiB of `A` (bytes)": b"A" * mib,
        "1 MiB JWS-shaped (`A…A.A…A.A…A`)": ".".join(["A" * third] * 3),
    }
    for token in cases.values():
        try:
            bridge.verify(token)
        except MalformedToken:  # TokenTooLarge is a MalformedToken
            continue
        raise AssertionError("garbage was not rejected as malformed")
    impls = [Impl(label, bridge.verify) for label in cases]
    # one "batch" per case: the same object repeated (rejection has nothing to cache)
    per_case = {label: [token] * 200 for label, token in cases.items()}
    samples: dict[str, list[float]] = {label: [] for label in cases}
    for r in range(rounds):
        order = impls[r % len(impls) :] + impls[: r % len(impls)]
        for impl in order:
            samples[impl.name].append(time_batch(impl.check, per_case[impl.name], MalformedToken))
    peer_rows: list[tuple[str, float]] = []
    big = cases["1 MiB JWS-shaped (`A…A.A…A.A…A`)"]
    key = idp.key_for("RS256")
    peers: list[Impl] = []
    if pyjwt is not None:
        peers.append(Impl("PyJWT", pyjwt_check("RS256", key.private_key.public_key())))
    if jose_jwt is not None:
        peers.append(Impl("joserfc", joserfc_check("RS256", key.public_jwk)))
    for peer in peers:
        per = [time_batch(peer.check, [big] * 5, Exception) for _ in range(max(3, rounds // 3))]
        peer_rows.append((peer.name, statistics.median(per)))
    short = statistics.median(samples["short garbage (`not-a-token`)"])
    print("| input (through `bridge.verify`) | raises | µs/call (median) | vs short garbage |")
    print("|---|---|---:|---:|")
    for label, token in cases.items():
        try:
            bridge.verify(token)
        except MalformedToken as exc:
            raised = type(exc).__name__
        med = statistics.median(samples[label])
        print(f"| {label} | {raised} | {med / 1000:.2f} | {med / short:.2f} |")
    for name, med in peer_rows:
        print(
            f"| for contrast: {name} on the 1 MiB JWS-shaped input | (its own error) | {med / 1000:.0f} | "
            f"{med / short:.0f} |"
        )


# -- profile -----------------------------------------------------------------------------------


def _source_of(bridge: Any, route: Any) -> Any:
    """The key source behind a route (private API: the profile follows the library's internals)."""
    if hasattr(bridge, "_source"):
        return bridge._source(route)
    return bridge._sources[route.issuer]


def profile(algs: Sequence[str], batch: int, reps: int = 11) -> None:
    """Where bridge.verify spends its time: stage breakdown, then cProfile.

    Uses private attributes of the library on purpose; each stage is timed over
    the same batch of first-seen tokens, stages interleaved within every rep.
    """
    import cProfile
    import pstats

    from federation import _rfc7515

    idp = MockIdP(issuer=ISSUER, audience=AUDIENCE, alg=algs[0], algorithms=list(algs))
    bridge = idp.bridge()
    assert bridge.warm_up().ok
    verifier = bridge._verifier
    limits = verifier._limits
    cols = ("verify", "parse", "prepare", "key", "sig", "finish")
    print(
        "| alg | bridge.verify | parse_compact | prepare - parse (routing, header rules) | get_key "
        "| signature only | finish - signature (claims, identity, result) | raw cryptography |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for alg in algs:
        rows: dict[str, list[float]] = {k: [] for k in (*cols, "raw")}
        raw = raw_check(alg, idp.key_for(alg).private_key.public_key())
        for _ in range(reps):
            tokens = [idp.mint(alg=alg, lifetime=LIFETIME) for _ in range(batch)]
            rows["raw"].append(time_batch(raw, tokens))
            rows["verify"].append(time_batch(bridge.verify, tokens))
            rows["parse"].append(time_batch(lambda t: _rfc7515.parse_compact(t, limits), tokens))
            routed: list[Any] = []
            rows["prepare"].append(
                time_batch(lambda t, push=routed.append: push(verifier.prepare(t)), tokens)
            )
            keys: list[Any] = []
            rows["key"].append(
                time_batch(
                    lambda jr, push=keys.append: push(
                        _source_of(bridge, jr[1]).get_key(jr[0].kid, jr[0].alg)
                    ),
                    routed,
                )
            )
            work = list(zip(routed, keys, strict=True))
            rows["sig"].append(
                time_batch(
                    lambda w: w[1].verifier(w[0][0].alg)(w[0][0].signing_input, w[0][0].signature), work
                )
            )
            rows["finish"].append(time_batch(lambda w: verifier.finish(w[0][0], w[0][1], w[1]), work))
        med = {k: statistics.median(v) / 1000 for k, v in rows.items()}
        print(
            f"| {alg} | {med['verify']:.1f} | {med['parse']:.1f} | {med['prepare'] - med['parse']:.1f} "
            f"| {med['key']:.1f} | {med['sig']:.1f} | {med['finish'] - med['sig']:.1f} | {med['raw']:.1f} |"
        )
    tokens = [idp.mint(alg=algs[0], lifetime=LIFETIME) for _ in range(batch * 10)]
    prof = cProfile.Profile()
    prof.enable()
    for t in tokens:
        bridge.verify(t)
    prof.disable()
    print(
        f"\ncProfile of bridge.verify over {len(tokens)} first-seen {algs[0]} tokens (top 25 by tottime):\n"
    )
    pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(25)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=41, help="interleaved rounds (default 41)")
    parser.add_argument(
        "--batch", type=int, default=100, help="distinct tokens per measurement (default 100)"
    )
    parser.add_argument("--algs", default=",".join(ALL_ALGS), help="comma-separated (default all four)")
    parser.add_argument("--quick", action="store_true", help="5 rounds x 50 tokens: a rough look")
    parser.add_argument("--no-garbage", action="store_true", help="skip the garbage-rejection table")
    parser.add_argument("--profile", action="store_true", help="also break bridge.verify down by stage")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="instead: instructions per token under valgrind's callgrind (benchmarks/instructions.py)",
    )
    args = parser.parse_args(argv)
    if args.instructions:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import instructions

        return instructions.main(["--algs", args.algs, "--tokens", str(3 * args.batch)])
    rounds, batch = (5, 50) if args.quick else (args.rounds, args.batch)
    algs = [a.strip() for a in args.algs.split(",") if a.strip()]
    unknown = set(algs) - set(ALL_ALGS)
    if unknown:
        parser.error(f"unsupported algorithm(s) {sorted(unknown)}; choose from {', '.join(ALL_ALGS)}")
    if pyjwt is None:
        print(f"note: PyJWT is not installed, its rows are skipped; install it with: {INSTALL_HINT}\n")
    started = time.perf_counter()
    print(header(rounds, batch) + "\n")
    print("### Verifying a first-seen token, keys cached\n")
    verify_table(rounds, batch, algs)
    if not args.no_garbage:
        print("\n### Rejecting garbage\n")
        garbage_table(rounds)
    if args.profile:
        print("\n### Where bridge.verify spends its time (µs/token, medians)\n")
        profile(algs, batch)
    print(f"\n(total {time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
