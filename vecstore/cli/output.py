"""Output: one-line JSON, aligned fields, tables (rich, imported when drawing)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from vecstore.cli.options import DEFAULT_NAMESPACE_NAME


def print_json(value: Any) -> None:
    """One line of JSON: the last line of stdout is the whole document (Airflow XCom)."""
    print(json.dumps(value, ensure_ascii=False, default=str))


def dump(obj: Any) -> Any:
    """A model (or a list of models) as JSON-ready data."""
    if isinstance(obj, list):
        return [dump(o) for o in obj]
    model_dump = getattr(obj, "model_dump", None)
    return model_dump(mode="json") if callable(model_dump) else obj


def ts(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def without_userinfo(url: str) -> str:
    """``s3://KEY:SECRET@bucket`` -> ``s3://bucket``: a URL may carry credentials."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host.rpartition('@')[2]}{slash}{path}"


def ns_name(namespace: str) -> str:
    return DEFAULT_NAMESPACE_NAME if namespace == "" else namespace


def field_text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return ts(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def print_fields(rows: Sequence[tuple[str, str]], indent: str = "") -> None:
    width = max((len(k) for k, _ in rows), default=0)
    for key, value in rows:
        print(f"{indent}{key:<{width}}  {value}")


def print_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right: Sequence[str] = (),
    caption: str | None = None,
) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    out = sys.stdout
    console = Console(file=out, highlight=False, width=None if out.isatty() else 200)
    table = Table(box=None, header_style="bold", pad_edge=False, caption=caption)
    for col in columns:
        table.add_column(col, justify="right" if col in right else "left", overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)


def print_namespace_counts(counts: Sequence[tuple[str, int]]) -> None:
    """The NAMESPACE / RECORDS table of ``namespaces list`` and ``stats``."""
    print_table(
        ["NAMESPACE", "RECORDS"],
        [[ns_name(ns), f"{n:,}"] for ns, n in counts],
        right=["RECORDS"],
    )
