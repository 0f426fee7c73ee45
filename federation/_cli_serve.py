"""``federation serve``: the login service (federation.web.create_app) under uvicorn."""

from __future__ import annotations

import argparse
import copy
import logging
import socket
import sys
from typing import Any, TextIO

from .errors import ConfigError

EXIT_OK, EXIT_UNAVAILABLE = 0, 3


def add_serve_command(sub: Any) -> None:
    """Register ``serve`` on the CLI's subparsers."""
    serve = sub.add_parser(
        "serve",
        help="run the login service (token exchange, sign-in, /sso, logout) with uvicorn",
        description="Serve federation.web.create_app for the config's web: and sessions: sections. "
        "Needs the web extra (pip install 'federation-bridge[web]'). Exit codes: 0 stopped, "
        "2 configuration error, 3 the address cannot be listened on (in use, not this host's).",
    )
    serve.add_argument("--config", "-c", required=True, help="the bridge config (YAML)")
    serve.add_argument(
        "--host", default="127.0.0.1", type=_host, help="address to listen on (default 127.0.0.1)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.set_defaults(run=_serve)


def _host(text: str) -> str:
    """An argparse type: a host name or address is printable ASCII (uvicorn's own error for
    other bytes is a traceback)."""
    if not text or not text.isascii() or not text.isprintable() or " " in text:
        raise argparse.ArgumentTypeError("must be a host name or an IP address")
    return text


def build_app(config: str) -> Any:
    """The ASGI app for ``config`` (a ConfigError when the web extra is missing)."""
    from .bridge import Bridge

    bridge = Bridge.from_file(config)
    try:
        from .web import create_app

        return create_app(bridge)
    except ImportError as exc:
        raise ConfigError(
            f"federation serve needs the web extra: pip install 'federation-bridge[web]' ({exc.name})"
        ) from None


def _serve(args: argparse.Namespace, out: TextIO) -> int:
    if not 0 < args.port < 65536:
        raise ConfigError("--port must be between 1 and 65535")
    app = build_app(args.config)
    try:
        import uvicorn
    except ImportError:
        raise ConfigError("federation serve needs uvicorn: pip install 'federation-bridge[web]'") from None
    # Bound before "serving" is said: a port in use is one line and exit 3, not a success
    # line followed by uvicorn's error.
    try:
        listening = _listen(args.host, args.port)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        sys.stderr.write(f"federation serve: cannot listen on {args.host}:{args.port} ({reason})\n")
        return EXIT_UNAVAILABLE
    out.write(f"serving the login service on http://{args.host}:{args.port} (Ctrl-C stops)\n")
    out.flush()
    # proxy_headers off: web.trusted_proxies alone decides which X-Forwarded-* count (uvicorn's
    # default would rewrite the peer address from 127.0.0.1's headers before the service sees it).
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        proxy_headers=False,
        log_level="info",
        log_config=_log_config(uvicorn),
    )
    with listening:
        uvicorn.Server(config).run(sockets=[listening])
    return EXIT_OK


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (as uvicorn binds one: SO_REUSEADDR)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    listening = socket.socket(family, kind, proto)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(address)
        listening.listen(2048)
    except OSError:
        listening.close()
        raise
    listening.set_inheritable(True)
    return listening


class RedactQuery(logging.Filter):
    """Keeps query strings out of uvicorn's access log: ``/sso?token=`` carries a token and
    ``/callback?code=`` a code (RFC 9700 §4.3: URLs end up in logs); the path stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0] + "?[redacted]", *args[3:])
        return True


def _log_config(uvicorn: Any) -> dict[str, Any]:
    """uvicorn's own logging config, its access log passed through :class:`RedactQuery`."""
    config: dict[str, Any] = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_query"] = {"()": RedactQuery}
    config["handlers"]["access"].setdefault("filters", []).append("redact_query")
    return config
