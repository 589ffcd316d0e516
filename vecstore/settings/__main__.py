"""``python -m vecstore.settings --markdown | --write PATH | --check PATH``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from vecstore.settings.docs import markdown, render_doc


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vecstore.settings")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--markdown", action="store_true", help="print the tables")
    how.add_argument("--write", metavar="PATH", help="update the generated block of PATH")
    how.add_argument("--check", metavar="PATH", help="exit 1 if PATH is not up to date")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown())
        return 0
    path = Path(args.write or args.check)
    text = path.read_text(encoding="utf-8")
    if args.write:
        path.write_text(render_doc(text), encoding="utf-8")
        return 0
    if render_doc(text) != text:
        print(f"{path} is out of date: run python -m vecstore.settings --write {path}")
        return 1
    return 0


sys.exit(_main())
