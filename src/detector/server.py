"""`detector serve`, `detector keys create|revoke|list` and `detector logs export`: the service's command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .config import PROJECT_ROOT

SERVICE = "service.gateway:Gateway"
# Idle client connections stay open this long. Longer than clients and load balancers keep theirs (httpx 5 s, aiohttp
# 15 s, common proxies 60 s), so the client closes first: a server closing as a request arrives drops that request.
KEEP_ALIVE_SECONDS = 75


def register_cli(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="start the API, the job runner and the moderator page (BentoML)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3000)
    serve.set_defaults(func=run_serve)

    keys = sub.add_parser("keys", help="create, revoke and list API keys (one per tenant)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key for TENANT and print it (shown only once)")
    create.add_argument("tenant")
    create.add_argument("--scope", action="append", choices=["scan", "jobs"],
                        help="grant only these scopes (repeatable; default: all)")
    create.add_argument("--rate", type=float, default=20.0, help="sustained requests per second")
    create.add_argument("--burst", type=float, default=40.0, help="requests allowed at once")
    create.add_argument("--json", action="store_true")
    create.set_defaults(func=run_keys_create)
    revoke = keys_sub.add_parser("revoke", help="revoke TENANT's active key")
    revoke.add_argument("tenant")
    revoke.set_defaults(func=run_keys_revoke)
    listing = keys_sub.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=run_keys_list)

    logs = sub.add_parser("logs", help="the request log (network log, Art. 10)")
    logs_sub = logs.add_subparsers(dest="logs_command", required=True)
    export = logs_sub.add_parser("export", help="write every request record to stdout or --output")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.add_argument("--tenant")
    export.add_argument("--output", type=Path, help="file to write (default: stdout)")
    export.set_defaults(func=run_logs_export)


def run_serve(args: argparse.Namespace) -> int:
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    command = [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", args.host, "--port", str(args.port),
               "--working-dir", str(PROJECT_ROOT), "--timeout-keep-alive", str(KEEP_ALIVE_SECONDS)]
    print(f"detector: serving on http://{args.host}:{args.port} (page: /ui/, API: /v1, docs: /v1/openapi.json)",
          file=sys.stderr, flush=True)
    os.chdir(PROJECT_ROOT)
    os.execv(sys.executable, command)


def _database():
    from .records.db import open_database

    return open_database()


def run_keys_create(args: argparse.Namespace) -> int:
    from .records import keys

    scopes = tuple(dict.fromkeys(args.scope)) if args.scope else keys.SCOPES
    try:
        created = keys.create_key(_database(), args.tenant, scopes, args.rate, args.burst)
    except ValueError as exc:
        print(f"detector keys create: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"tenant": created.tenant, "key": created.key, "webhook_secret": created.webhook_secret}))
    else:
        print(f"tenant:         {created.tenant}\nkey:            {created.key}\n"
              f"webhook secret: {created.webhook_secret}\n"
              "Store both now: only their hashes (key) are kept, and they are not shown again.")
    return 0


def run_keys_revoke(args: argparse.Namespace) -> int:
    from .records import keys

    if keys.revoke_key(_database(), args.tenant) == 0:
        print(f"detector keys revoke: tenant {args.tenant!r} has no active key", file=sys.stderr)
        return 1
    print(f"revoked the active key of {args.tenant}")
    return 0


def run_keys_list(args: argparse.Namespace) -> int:
    from .records import keys

    rows = keys.list_keys(_database())
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    print(f"{'TENANT':<24}{'KEY ID':<14}{'SCOPES':<12}{'RATE/S':>8}{'BURST':>7}  STATE")
    for row in rows:
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
        print(f"{row['tenant']:<24}{row['key_id']:<14}{','.join(row['scopes']):<12}"
              f"{row['rate_per_second']:>8g}{row['burst']:>7g}  {state}")
    return 0


def run_logs_export(args: argparse.Namespace) -> int:
    from .records import requestlog

    if args.output is None:
        count = requestlog.export(_database(), sys.stdout, args.format, tenant=args.tenant)
    else:
        with args.output.open("w", encoding="utf-8", newline="") as out:
            count = requestlog.export(_database(), out, args.format, tenant=args.tenant)
    print(f"exported {count} records", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m detector.server ...`: these commands without the rest of the `detector` CLI."""
    parser = argparse.ArgumentParser(prog="detector")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
