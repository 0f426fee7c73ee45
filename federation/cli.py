"""The ``federation`` command.

Owns: argument parsing and printing for ``federation demo`` (an in-process
mock issuer mints a token and the bridge verifies it), ``federation verify``
(verify a token against a config file), ``federation check-config`` and
``federation version``. Exit codes: 0 ok, 1 token rejected, 2 configuration
error, 3 issuer keys unavailable.

Must not: hold any verification logic; it calls the public API only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from . import __version__
from .bridge import Bridge
from .config import load_config
from .errors import ConfigError, InvalidToken, KeySetUnavailable

__all__ = ["main"]

EXIT_OK, EXIT_REJECTED, EXIT_CONFIG, EXIT_UNAVAILABLE = 0, 1, 2, 3


def _identity(vt: Any) -> dict[str, Any]:
    return {
        "issuer": vt.issuer,
        "subject": vt.subject,
        "provider": vt.provider,
        "token_type": vt.token_type,
        "algorithm": vt.algorithm,
        "key_id": vt.key_id,
        "audience": list(vt.audience),
        "expires_at": vt.expires_at.isoformat(),
        "claims": dict(vt.claims),
    }


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    from .testing import MockIdP  # the toolkit is only needed by the demo

    idp = MockIdP(issuer="https://idp.example.test", audience="demo-app", alg=args.alg)
    config = idp.bridge_config()
    with idp.bridge(config=config) as bridge:
        token = idp.mint(sub="user-42", email="ada@example.com", name="Ada Lovelace", groups=["staff"])
        vt = bridge.verify(token)
        rejected = []
        for label, bad in (
            ("expired token", idp.mint(expired=True)),
            ("token for another app", idp.mint(aud="someone-else")),
            ("token signed with an unknown key", idp.mint(kid="not-published")),
        ):
            try:
                bridge.verify(bad)
            except InvalidToken as exc:
                rejected.append({"case": label, "code": exc.code})
    if args.json:
        json.dump({"config": config, "verified": _identity(vt), "rejected": rejected}, out, indent=2)
        out.write("\n")
        return EXIT_OK
    out.write("federation demo: an in-process mock issuer, no network\n\n")
    out.write(f"trusted issuer   {idp.issuer}  (audience {idp.audience!r}, keys from {idp.jwks_uri})\n")
    out.write(f"minted token     {token[:24]}... ({len(token)} bytes, {vt.algorithm}, kid {vt.key_id})\n\n")
    out.write("verified identity\n")
    for name in ("issuer", "subject", "provider", "token_type", "expires_at"):
        value = getattr(vt, name)
        out.write(f"  {name:<11} {value.isoformat() if hasattr(value, 'isoformat') else value}\n")
    for claim in ("email", "name", "groups"):
        out.write(f"  {claim:<11} {vt.claims[claim]}\n")
    out.write("\nrejected, as they should be\n")
    for item in rejected:
        out.write(f"  {item['case']:<34} -> {item['code']}\n")
    return EXIT_OK


def _verify(args: argparse.Namespace, out: TextIO) -> int:
    token = sys.stdin.read().strip() if args.token in (None, "-") else args.token
    with Bridge.from_file(args.config) as bridge:
        vt = bridge.verify(token)
    json.dump(_identity(vt), out, indent=2, default=str)
    out.write("\n")
    return EXIT_OK


def _check_config(args: argparse.Namespace, out: TextIO) -> int:
    config = load_config(args.config)
    issuers = [iss for entry in config.issuers for iss in entry.trusted_issuers]
    out.write(f"{args.config}: ok ({len(issuers)} issuer{'s' if len(issuers) != 1 else ''})\n")
    for iss in issuers:
        out.write(f"  {iss}\n")
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="federation", description="Accept tokens from other identity providers."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="mint a token with an in-process mock issuer and verify it")
    demo.add_argument("--json", action="store_true", help="print machine-readable JSON")
    demo.add_argument("--alg", default="RS256", choices=["RS256", "PS256", "ES256", "EdDSA"])
    demo.set_defaults(run=_demo)
    verify = sub.add_parser("verify", help="verify a token with a config file")
    verify.add_argument("--config", "-c", required=True, help="the bridge config (YAML)")
    verify.add_argument("token", nargs="?", help="the token, or '-' / nothing to read standard input")
    verify.set_defaults(run=_verify)
    check = sub.add_parser("check-config", help="validate a config file")
    check.add_argument("config")
    check.set_defaults(run=_check_config)
    version = sub.add_parser("version", help="print the version")
    version.set_defaults(run=lambda args, out: out.write(f"federation-bridge {__version__}\n") and EXIT_OK)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; return the exit code."""
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    try:
        code: int = args.run(args, out)
    except ConfigError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        return EXIT_CONFIG
    except InvalidToken as exc:
        sys.stderr.write(f"token rejected ({exc.code}): {exc}\n")
        return EXIT_REJECTED
    except KeySetUnavailable as exc:
        sys.stderr.write(f"issuer keys unavailable ({exc.reason or 'unknown'}): {exc}\n")
        return EXIT_UNAVAILABLE
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
