"""``python -m warroom.runbooks``: check or export the runbooks.

    python -m warroom.runbooks check [--dir DIR]        load every runbook, report problems
    python -m warroom.runbooks export OUT [--dir DIR]   write static HTML and Markdown to OUT

The ``warroom`` CLI can call ``main(argv)`` or ``export_runbooks`` directly.
"""

from __future__ import annotations

import argparse
import os
import sys

from warroom.models.runbook import RunbookError
from warroom.runbooks.catalogue import load_catalogue
from warroom.runbooks.export import export_runbooks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m warroom.runbooks", description="Check or export runbooks.")
    parser.add_argument(
        "--dir",
        default=os.environ.get("WARROOM_RUNBOOKS_DIR"),
        help="directory of runbook YAML files (default: $WARROOM_RUNBOOKS_DIR or the shipped runbooks)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="load every runbook and report the first problem")
    export = sub.add_parser("export", help="write every runbook as static HTML and Markdown")
    export.add_argument("out", help="output directory (created if missing)")
    args = parser.parse_args(argv)
    try:
        catalogue = load_catalogue(args.dir)
    except RunbookError as err:
        print(f"warroom: {err}", file=sys.stderr)
        return 1
    if args.command == "check":
        print(f"{len(catalogue)} runbooks in {catalogue.directory}: all valid")
        return 0
    written = export_runbooks(catalogue, args.out)
    print(f"wrote {len(written)} files for {len(catalogue)} runbooks to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
