"""Manage the tracking API's sources and write keys, against the embedded stack or AWS alike.

    python infra/sources.py create web        # issue a key for source "web" (created if new); prints it once
    python infra/sources.py revoke web [--key ID]  # revoke one key by its id, or every key of the source
    python infra/sources.py list              # sources, their keys' ids, created and revoked times

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
from audience.services.sources import issue_key, revoke_keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sources", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stack", default="audience-engine", help="the CloudFormation stack's name")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="issue a new write key for a source")
    create.add_argument("name")
    revoke = commands.add_parser("revoke", help="revoke a source's keys")
    revoke.add_argument("name")
    revoke.add_argument("--key", default=None, help="the key id to revoke (default: every live key of the source)")
    commands.add_parser("list", help="list the sources and their keys")
    args = parser.parse_args(argv)

    outputs = _outputs(args.stack)
    store, now = DynamoSources(outputs["ProfilesTableName"]), datetime.now(UTC)
    if args.command == "create":
        pepper = boto3.client("secretsmanager").get_secret_value(SecretId=outputs["PiiPepperName"])["SecretString"]
        key, key_id = issue_key(args.name, store, pepper, now)
        print(f"source {args.name}: new write key (shown once, keep it secret)\n  key:    {key}\n  key id: {key_id}")
        print(f"  send with: Authorization: Basic base64('{key}:') to {outputs.get('ApiUrl', '<ApiUrl>')}/v1/batch")
    elif args.command == "revoke":
        revoked = revoke_keys(args.name, args.key, store, now)
        print(f"source {args.name}: revoked {', '.join(revoked) or 'nothing (no live key)'}")
    else:
        for source in store.load().sources.values():
            print(f"{source.name} (since {source.created_at:%Y-%m-%d})")
            for key in source.keys:
                state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "live"
                print(f"  {key.key_id}  created {key.created_at:%Y-%m-%d %H:%M}  {state}")
    return 0


def _outputs(stack: str) -> dict[str, str]:
    described = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


if __name__ == "__main__":
    sys.exit(main())
