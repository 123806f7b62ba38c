"""Manage the tracking API's sources and write keys, against the embedded stack or AWS alike.

    python infra/sources.py create web [--origins "https://shop.example.com,http://localhost:*"]
                                              # issue a key for source "web" (created if new); prints it once
    python infra/sources.py origins web "https://shop.example.com"  # the origins its pages may send from
    python infra/sources.py revoke web [--key ID]  # revoke one key by its id, or every key of the source
    python infra/sources.py list              # sources, their origins, their keys' ids, created and revoked times

An origin is ``scheme://host[:port]`` as a browser sends it (no path); ``:*`` allows any port.
A source without origins takes events from servers only (requests without an ``Origin``).

It finds the table and the pepper from the stack's Outputs (``--stack``, default
``audience-engine``) and reaches AWS through boto3's usual configuration (``AWS_ENDPOINT_URL``
for a local stack; ``make source`` sets it for ``make local``).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

import boto3

from audience.adapters.sources import DynamoSources
from audience.domain.errors import InvalidInput, NotFound
from audience.domain.sources import checked_origins
from audience.services.sources import issue_key, revoke_keys, set_origins


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sources", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stack", default="audience-engine", help="the CloudFormation stack's name")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="issue a new write key for a source")
    create.add_argument("name")
    create.add_argument("--origins", default=None, help="comma-separated origins its pages may send from")
    origins = commands.add_parser("origins", help="set the origins a source's pages may send from")
    origins.add_argument("name")
    origins.add_argument("origins", nargs="*", help="origins, comma- or space-separated (none: servers only)")
    revoke = commands.add_parser("revoke", help="revoke a source's keys")
    revoke.add_argument("name")
    revoke.add_argument("--key", default=None, help="the key id to revoke (default: every live key of the source)")
    commands.add_parser("list", help="list the sources and their keys")
    args = parser.parse_args(argv)

    try:
        return _run(args)
    except (InvalidInput, NotFound) as exc:
        reasons = [e.reason for e in exc.errors] if isinstance(exc, InvalidInput) else [str(exc)]
        print("\n".join(f"sources: {reason}" for reason in reasons), file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    outputs = _outputs(args.stack)
    store, now = DynamoSources(outputs["ProfilesTableName"]), datetime.now(UTC)
    if args.command == "create":
        wanted = _origins([args.origins] if args.origins else [])
        checked_origins(wanted)  # before a key is issued: a bad origin leaves nothing half done
        pepper = boto3.client("secretsmanager").get_secret_value(SecretId=outputs["PiiPepperName"])["SecretString"]
        key, key_id = issue_key(args.name, store, pepper, now)
        print(f"source {args.name}: new write key (shown once, keep it secret)\n  key:    {key}\n  key id: {key_id}")
        print(f"  send with: Authorization: Basic base64('{key}:') to {outputs.get('ApiUrl', '<ApiUrl>')}/v1/batch")
        if wanted:
            print(f"  pages may send from: {', '.join(set_origins(args.name, wanted, store))}")
    elif args.command == "origins":
        allowed = set_origins(args.name, _origins(args.origins), store)
        print(f"source {args.name}: pages may send from {', '.join(allowed) or 'nowhere (servers only)'}")
    elif args.command == "revoke":
        revoked = revoke_keys(args.name, args.key, store, now)
        print(f"source {args.name}: revoked {', '.join(revoked) or 'nothing (no live key)'}")
    else:
        for source in store.load().sources.values():
            print(f"{source.name} (since {source.created_at:%Y-%m-%d})")
            print(f"  origins: {', '.join(source.allowed_origins) or 'none (servers only)'}")
            for write_key in source.keys:
                state = f"revoked {write_key.revoked_at:%Y-%m-%d %H:%M}" if write_key.revoked_at else "live"
                print(f"  {write_key.key_id}  created {write_key.created_at:%Y-%m-%d %H:%M}  {state}")
    return 0


def _origins(values: list[str]) -> list[str]:
    """Origins as given on the command line: comma- or space-separated, in one or more arguments."""
    return [origin for value in values for origin in value.replace(",", " ").split()]


def _outputs(stack: str) -> dict[str, str]:
    described = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


if __name__ == "__main__":
    sys.exit(main())
