"""Instructions per first-seen token, counted by valgrind's callgrind: a second,
machine-independent measure of ``bridge.verify`` against the raw signature check.

Run from the repository root (valgrind must be installed: ``apt-get install valgrind``)::

    python benchmarks/run.py --instructions --algs RS256,PS256   # 300 tokens per loop
    python benchmarks/instructions.py --algs ES256,EdDSA --tokens 200

Method (docs/performance.md, "Instructions"): the parent mints the tokens once
and writes them, the public key (PEM) and a JWK Set to a work directory. For
every algorithm three child interpreters run under callgrind, identical up to
the loop that is measured: each loads the same files, builds the same bridge
(``Bridge.from_dict`` over a local ``jwks_file``) and the same raw check, calls
both once on a warm-up token, then calls one of them — nothing, the raw check,
or ``bridge.verify`` — on every token, with the garbage collector off and
``PYTHONHASHSEED=0``. The instructions of a loop are the child's total minus
the "nothing" child's total; the ratio is the bridge's over raw's. Instruction
counts do not move with load or clock speed, so two runs agree to a fraction of
a percent.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

ISSUER = "https://idp.bench.test"
AUDIENCE = "bench-client"
ALL_ALGS = ("RS256", "PS256", "ES256", "EdDSA")
MODES = ("nothing", "raw", "bridge")
_TOTAL = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def _b64d(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def raw_check(alg: str, public_key: Any) -> Callable[[str], object]:
    """The signature check alone (the same baseline as benchmarks/run.py)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    if alg in ("RS256", "PS256"):
        sha = hashes.SHA256()
        pad = padding.PKCS1v15() if alg == "RS256" else padding.PSS(padding.MGF1(sha), sha.digest_size)

        def check_rsa(token: str) -> object:
            signing_input, _, sig = token.rpartition(".")
            public_key.verify(_b64d(sig), signing_input.encode(), pad, sha)
            return True

        return check_rsa
    if alg == "ES256":
        ecdsa = ec.ECDSA(hashes.SHA256())

        def check_ec(token: str) -> object:
            signing_input, _, sig = token.rpartition(".")
            raw = _b64d(sig)
            der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
            public_key.verify(der, signing_input.encode(), ecdsa)
            return True

        return check_ec

    def check_ed(token: str) -> object:
        signing_input, _, sig = token.rpartition(".")
        public_key.verify(_b64d(sig), signing_input.encode())
        return True

    return check_ed


# -- the child: one interpreter under callgrind ---------------------------------------------


def child(mode: str, work: Path) -> int:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from federation import Bridge

    spec = json.loads((work / "spec.json").read_text())
    alg, tokens = spec["alg"], spec["tokens"]
    raw = raw_check(alg, load_pem_public_key((work / "public.pem").read_bytes()))
    bridge = Bridge.from_dict(
        {
            "issuers": [
                {
                    "issuer": ISSUER,
                    "audiences": [AUDIENCE],
                    "algorithms": [alg],
                    "jwks_file": str(work / "jwks.json"),
                }
            ]
        }
    )
    # Identical in every mode: the first call of each builds its one-off state.
    raw(spec["warm_up"])
    bridge.verify(spec["warm_up"])
    check: Callable[[str], object] = {"nothing": lambda t: None, "raw": raw, "bridge": bridge.verify}[mode]
    gc.disable()
    for token in tokens:
        check(token)
    gc.enable()
    return 0


# -- the parent -----------------------------------------------------------------------------


def prepare(alg: str, count: int, work: Path) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from federation.testing import MockIdP

    idp = MockIdP(issuer=ISSUER, audience=AUDIENCE, alg=alg, algorithms=[alg])
    public = idp.key_for(alg).private_key.public_key()
    (work / "public.pem").write_bytes(public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    (work / "jwks.json").write_text(json.dumps(idp.jwks()))
    tokens = [idp.mint(alg=alg, lifetime=3600) for _ in range(count + 1)]
    (work / "spec.json").write_text(json.dumps({"alg": alg, "warm_up": tokens[0], "tokens": tokens[1:]}))


def count_instructions(mode: str, work: Path) -> int:
    out = work / f"callgrind.{mode}.out"
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        mode,
        str(work),
    ]
    done = subprocess.run(command, env=env, capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"callgrind child ({mode}) failed:\n{done.stderr.decode(errors='replace')[-2000:]}")
    match = _TOTAL.search(out.read_bytes())
    if match is None:
        raise SystemExit(f"no instruction total in {out}")
    return int(match.group(1))


def measure(algs: Sequence[str], count: int) -> list[tuple[str, float, float, float]]:
    """(alg, raw instructions/token, bridge instructions/token, ratio) per algorithm."""
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    rows = []
    for alg in algs:
        with tempfile.TemporaryDirectory(prefix="fedbench-instr-") as tmp:
            work = Path(tmp)
            prepare(alg, count, work)
            totals = {mode: count_instructions(mode, work) for mode in MODES}
        raw = (totals["raw"] - totals["nothing"]) / count
        lib = (totals["bridge"] - totals["nothing"]) / count
        rows.append((alg, raw, lib, lib / raw))
        print(f"| {alg} | {raw:,.0f} | {lib:,.0f} | {lib / raw:.3f} |", flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--algs", default="RS256,PS256", help=f"comma-separated, from {', '.join(ALL_ALGS)}")
    parser.add_argument("--tokens", type=int, default=300, help="first-seen tokens per loop (default 300)")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child[0], Path(args.child[1]))
    algs = [a.strip() for a in args.algs.split(",") if a.strip()]
    unknown = set(algs) - set(ALL_ALGS)
    if unknown or args.tokens < 1:
        parser.error(f"choose algorithms from {', '.join(ALL_ALGS)} and at least one token")
    print(
        f"Instructions per first-seen token (callgrind, {args.tokens} tokens per loop, "
        "loop total minus an empty loop's)\n"
    )
    print("| alg | raw cryptography | federation-bridge | ratio |")
    print("|---|---:|---:|---:|")
    measure(algs, args.tokens)
    return 0


if __name__ == "__main__":
    sys.exit(main())
