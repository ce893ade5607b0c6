"""`python -m connectors.sandbox serve`: serve the sandbox APIs until Ctrl-C."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from connectors.sandbox.brand import BRAND_NAME, DEFAULT_SCALE, DEFAULT_SEED, SANDBOX_GA4_PROPERTY_ID, SCALES
from connectors.sandbox.google_auth import google_service_account_info
from connectors.sandbox.real_mode import real_mode_settings
from connectors.sandbox.registry import apis
from connectors.sandbox.server import SandboxServer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m connectors.sandbox",
        description=f"The offline sandbox: {BRAND_NAME}'s APIs (GA4 Data API and Google OAuth so far) "
        "served from a local HTTP server with deterministic data.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve",
        help="serve the sandbox until Ctrl-C",
        description="Serve the sandbox APIs on a local port until Ctrl-C, printing the base URLs to "
        "point the connectors at (GA4_BASE_URL, GA4_TOKEN_URI).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=8765, help="port to listen on; 0 picks a free one (default: 8765)"
    )
    serve.add_argument(
        "--seed",
        type=int,
        help=f"data seed: the same seed serves the same data (default: SANDBOX_SEED or {DEFAULT_SEED})",
    )
    serve.add_argument(
        "--scale",
        choices=list(SCALES),
        help="brand size: small (tests), demo, large (benchmarks) "
        f"(default: SANDBOX_SCALE or {DEFAULT_SCALE})",
    )
    serve.add_argument(
        "--credentials-file",
        type=Path,
        help="also write a throwaway service-account key for the sandbox here "
        "(use it as GOOGLE_APPLICATION_CREDENTIALS) and print every source's settings as real "
        "sources pointed at the sandbox, ready for .env",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    seed_text = os.environ.get("SANDBOX_SEED") or str(DEFAULT_SEED)
    if args.seed is None and not seed_text.lstrip("-").isdigit():
        parser.error(f"SANDBOX_SEED={seed_text!r} is not an integer")
    seed = args.seed if args.seed is not None else int(seed_text)
    scale = args.scale or os.environ.get("SANDBOX_SCALE") or DEFAULT_SCALE
    if scale not in SCALES:
        parser.error(f"SANDBOX_SCALE={scale!r} is not one of {', '.join(SCALES)}")
    try:
        server = SandboxServer(seed=seed, scale=scale, host=args.host, port=args.port).start()
    except OSError as exc:
        parser.error(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    lines = [
        f"{BRAND_NAME} sandbox (seed {server.seed}, scale {server.scale}) serving at {server.base_url}",
        f"  GA4_BASE_URL={server.ga4_base_url}",
        f"  GA4_TOKEN_URI={server.google_token_uri}",
        f"  GA4_PROPERTY_ID={SANDBOX_GA4_PROPERTY_ID}",
    ]
    if args.credentials_file:
        info = google_service_account_info(server.google_token_uri)
        args.credentials_file.write_text(json.dumps(info, indent=2))
        args.credentials_file.chmod(0o600)
        lines.append(f"  GOOGLE_APPLICATION_CREDENTIALS={args.credentials_file}")
        # and the rest of every source's settings as a real source's (the sandbox's real-credential
        # mode), ready for `.env`
        settings = real_mode_settings(server.base_url, server.google_token_uri, args.credentials_file)
        shown = {"GOOGLE_APPLICATION_CREDENTIALS", "GA4_BASE_URL", "GA4_TOKEN_URI", "GA4_PROPERTY_ID"}
        lines += [f"  {name}={value}" for name, value in settings.items() if name not in shown]
    lines += [f"  {api.name}: {server.base_url}{api.prefix}" for api in apis()]
    lines.append("Press Ctrl-C to stop.")
    print("\n".join(lines), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        print("sandbox stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
