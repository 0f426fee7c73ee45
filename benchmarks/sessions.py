"""Session benchmark: the per-request path of the app's own tokens, as ratios to raw signature checks.

Run from the repository root::

    python benchmarks/sessions.py            # 41 interleaved rounds x 100 tokens (~20 s)
    python benchmarks/sessions.py --quick    # 5 rounds x 50 tokens
    python benchmarks/sessions.py --warm-caches   # no full collection just before each timed batch

Rows (docs/performance.md, "Sessions"), each paired per round with its
baseline measured in the same round:

* ``issue_session``: a new session for an existing user (ES256 access token,
  refresh token, stored in the memory session store), against a raw
  ``cryptography`` ES256 signature;
* ``SessionTokens.verify``: a first-seen session token, against a raw ES256 check;
* ``authenticate``, first-seen session token (ES256): the whole per-request
  path for a token never seen before (strict verify, user and revocation
  state from the user cache), against a raw ES256 check; target <= 1.3x;
* ``authenticate``, repeated session token and repeated external token
  (RS256): every token of the batch authenticated before (twice: the first
  pass logs the external tokens in, the second admits each under the user's
  state as it now is), so each call is a cache hit that still re-checks
  expiry, the user-state bound and, for the external token, that the
  issuer's key set is the one it was verified with; against a raw RS256
  check; target <= 0.05x.

Every timed batch follows a full garbage collection (``gc.collect()``, then GC off
for the batch), which walks the whole heap and leaves the CPU caches cold: a
repeat, which is a few dictionary and attribute reads, then pays mostly for cache
misses. ``--warm-caches`` collects once per round before the warm-up passes
instead, so a repeat is timed as a busy server's hot path runs it; the first-seen
rows barely move, being dominated by the signature.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from run import header, paired, quartiles, raw_check, time_batch  # the verification benchmark's tools

from federation.sessions import generate_private_key_pem
from federation.storage import MemoryStore
from federation.testing import MockIdP

Check = Callable[[str], object]
#: The ratios docs/sessions.md promises to stay within.
BOUNDS = {
    "authenticate, first-seen session token": 1.3,
    "authenticate, repeated session token": 0.05,
    "authenticate, repeated external token": 0.05,
}


def _bridge(idp: MockIdP) -> Any:
    pem = generate_private_key_pem("ES256").decode()
    config = idp.bridge_config(
        sessions={"issuer": "https://app.bench.test", "keys": [{"env": "K"}], "touch_interval": 86400}
    )
    bridge = idp.bridge(config=config, store=MemoryStore(), environ={"K": pem}, audit=lambda e: None)
    assert bridge.warm_up().ok
    return bridge


def main(argv: Sequence[str] | None = None) -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="5 rounds x 50 tokens")
    parser.add_argument(
        "--warm-caches", action="store_true", help="collect once per round, not before each timed batch"
    )
    args = parser.parse_args(argv)
    rounds, batch = (5, 50) if args.quick else (args.rounds, args.batch)
    started = time.perf_counter()
    collection = "once per round (--warm-caches)" if args.warm_caches else "before every timed batch"
    print(header(rounds, batch) + f"; full garbage collection {collection}\n")
    idp = MockIdP(issuer="https://idp.bench.test", audience="bench", alg="RS256", clock=time.time)
    bridge = _bridge(idp)
    user = bridge.exchange(idp.mint(sub="bench-user", lifetime=7200)).user
    tokens = bridge.sessions.tokens
    ring_public = tokens.ring.signing_key.private.public_key()
    raw_es256 = raw_check("ES256", ring_public)
    raw_rs256 = raw_check("RS256", idp.keys[0].private_key.public_key())
    signer = tokens.ring.signing_key.private
    ecdsa = ec.ECDSA(hashes.SHA256())

    def raw_sign(token: str) -> object:
        return signer.sign(token.encode(), ecdsa)

    def issue(_: str) -> object:
        return bridge.issue_session(user)

    def session_verify(token: str) -> object:
        return tokens.verify(token, now=time.time())

    authenticate = bridge.authenticate

    def session_batch() -> list[str]:
        return [bridge.issue_session(user).access_token for _ in range(batch)]

    def external_batch() -> list[str]:
        return [idp.mint(sub="bench-user", lifetime=7200) for _ in range(batch)]

    # (name, the library's call, its baseline and the baseline's name, how a round's batch is
    # made for each, whether the library's batch is authenticated before it is timed)
    Row = tuple[str, Check, Check, str, Callable[[], list[str]], Callable[[], list[str]] | None, bool]
    rows: list[Row] = [
        ("issue_session (ES256)", issue, raw_sign, "raw ES256 sign", session_batch, None, False),
        (
            "SessionTokens.verify, first-seen (ES256)",
            session_verify,
            raw_es256,
            "raw ES256",
            session_batch,
            None,
            False,
        ),
        (
            "authenticate, first-seen session token",
            authenticate,
            raw_es256,
            "raw ES256",
            session_batch,
            None,
            False,
        ),
        (
            "authenticate, repeated session token",
            authenticate,
            raw_rs256,
            "raw RS256",
            session_batch,
            external_batch,
            True,
        ),
        (
            "authenticate, repeated external token",
            authenticate,
            raw_rs256,
            "raw RS256",
            external_batch,
            external_batch,
            True,
        ),
    ]
    print("| path | µs/token (median) | baseline | baseline µs | ratio (paired median) | ratio IQR | bound |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for name, check, baseline, base_name, make, make_baseline, warm in rows:
        lib_times: list[float] = []
        base_times: list[float] = []
        for r in range(rounds + 1):
            lib_tokens = make()
            base_tokens = make_baseline() if make_baseline is not None else lib_tokens
            if args.warm_caches:
                gc.collect()  # here, so that none is due in the timed batches below
            if warm:  # steady state: seen before, and admitted since the user's state last changed
                for _ in range(2):
                    for token in lib_tokens:
                        check(token)
            pair = [(lib_times, check, lib_tokens), (base_times, baseline, base_tokens)]
            if r % 2:
                pair.reverse()
            for into, fn, batch_tokens in pair:
                elapsed = time_batch(fn, batch_tokens, collect=not args.warm_caches)
                if r:  # round 0 warms up
                    into.append(elapsed)
        r1, ratio, r3 = quartiles(paired(lib_times, base_times))
        bound = BOUNDS.get(name)
        verdict = "" if bound is None else f"<= {bound} {'ok' if ratio <= bound else 'MISSED'}"
        print(
            f"| {name} | {statistics.median(lib_times) / 1000:.2f} | {base_name} | "
            f"{statistics.median(base_times) / 1000:.1f} | {ratio:.3f} | {r1:.3f}-{r3:.3f} | {verdict} |"
        )
        sys.stdout.flush()
    print(f"\n(total {time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
