"""``python -m fastcron``: the command line.

``main(argv)`` returns the exit code: 0 ok, 1 a job failed, 2 bad usage or bad input (always with
one line on stderr and no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from fastcron.errors import FastcronError
from fastcron.triggers import parse_schedule

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2, like every other bad input."""

    def error(self, message: str) -> Any:  # noqa: ANN401 - argparse's signature
        raise _UsageError(f"{self.prog}: {message}")


class _UsageError(Exception):
    pass


def _build_parser() -> _Parser:
    parser = _Parser(prog="fastcron", description="Background jobs on cron schedules.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    explain = commands.add_parser("explain", help="describe a schedule and list its next fire times")
    explain.add_argument("expr", help="a cron expression, macro, interval or ISO-8601 datetime")
    explain.add_argument("--tz", default=None, help="IANA time zone (default UTC)")
    explain.add_argument("--count", type=int, default=5, help="how many fire times (default 5)")
    explain.add_argument("--after", default=None, help="list fire times after this ISO-8601 instant")
    explain.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _explain(args: argparse.Namespace) -> int:
    if args.count < 0 or args.count > 10_000:
        raise _UsageError(f"fastcron explain: --count must be 0-10000, not {args.count}")
    trigger = parse_schedule(args.expr, args.tz)
    if args.after is None:
        start = datetime.now(timezone.utc)
    else:
        try:
            start = datetime.fromisoformat(args.after)
        except ValueError:
            raise _UsageError(f"fastcron explain: --after {args.after!r} is not an ISO-8601 datetime") from None
    fires = trigger.next_n(start, args.count)
    description = trigger.describe()
    if args.json:
        data = {
            "expr": args.expr,
            "tz": trigger.tz,
            "description": description,
            "next": [fire.isoformat() for fire in fires],
        }
        print(json.dumps({"data": data, "artifact_type": "card", "title": f"Schedule {args.expr}"}))
        return EXIT_OK
    print(f"{args.expr}  ({trigger.tz})")
    print(description)
    for fire in fires:
        print(f"  {fire.isoformat()}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "explain":
            return _explain(args)
        raise _UsageError(f"fastcron: unknown command {args.command!r}")
    except _UsageError as error:
        print(str(error), file=sys.stderr)
        return EXIT_USAGE
    except (FastcronError, TypeError) as error:
        print(f"fastcron: {error}", file=sys.stderr)
        return EXIT_USAGE
