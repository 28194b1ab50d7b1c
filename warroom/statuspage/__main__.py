"""``python -m warroom.statuspage export DIR [--watch]``: a composition root."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from warroom.logs import configure_logging
from warroom.models.components import CatalogError
from warroom.settings import Settings
from warroom.statuspage.export import export


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m warroom.statuspage", description="The public status page.")
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export", help="render the page, the v2 JSON and the Atom feed to static files")
    exp.add_argument("dir", type=Path, help="output directory (created if missing)")
    exp.add_argument("--watch", action="store_true", help="keep exporting: often while incidents are open")
    exp.add_argument("--interval", type=float, default=30.0, help="seconds between exports while incidents are open")
    exp.add_argument("--idle-interval", type=float, default=300.0, help="seconds between exports otherwise")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_level)
    if args.interval <= 0 or args.idle_interval <= 0:
        parser.error("intervals must be positive")
    try:
        result = export(settings, args.dir, watch=args.watch, interval=args.interval, idle_interval=args.idle_interval)
    except CatalogError as err:
        print(f"warroom: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    print(f"exported {len(result.files)} files to {args.dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
