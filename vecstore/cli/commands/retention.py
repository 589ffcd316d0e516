"""``vecstore rebuild`` and ``vecstore vacuum`` (docs/rebuild.md)."""

from __future__ import annotations

import argparse

from vecstore.cli.exitcodes import EXIT_OK, exit_code_for
from vecstore.cli.options import DEFAULT_NAMESPACE_NAME, index_option, namespace, open_index
from vecstore.cli.output import dump, ns_name, print_fields, print_json, print_table
from vecstore.cli.registry import Commands


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text!r}")
    return value


def register(commands: Commands) -> None:
    p = commands.command(
        "rebuild",
        rebuild,
        "rebuild an index's clusters offline",
        "Re-cluster one namespace (or every namespace) of an index: new k for its size, "
        "k-means on a fresh sample, fresh segments, committed atomically. Writes made "
        "meanwhile are kept (replayed from the log); reads go on against the old version. "
        "Prints the cluster balance and estimated recall@10 before and after. Runs to the "
        "end; with --wait the exit status is the job's (0 Completed, 1 Failed, 2 Cancelled), "
        "without it 0 once every job reached a final status.",
    )
    index_option(p)
    p.add_argument(
        "--namespace",
        type=namespace,
        metavar="NS",
        help=f"only this namespace ({DEFAULT_NAMESPACE_NAME}: the default one)",
    )
    p.add_argument(
        "--records-per-cluster",
        type=_positive_int,
        metavar="N",
        help="target records per cluster (default: chosen from the size)",
    )
    p.add_argument("--wait", action="store_true", help="exit with the job's status (schedulers)")

    v = commands.command(
        "vacuum",
        vacuum,
        "delete files no version needs any more",
        "Delete superseded segments, id files, centroids and manifests, log entries "
        "already folded into the clusters, and scratch files of finished jobs, once older "
        "than the retention period (VECSTORE_RETENTION_SECONDS, default 3600). Never what "
        "the visible version, a running job or a reader within the retention period uses.",
    )
    index_option(v)
    v.add_argument(
        "--older-than",
        type=_seconds,
        metavar="SECONDS",
        help="retention period in seconds (default VECSTORE_RETENTION_SECONDS)",
    )
    v.add_argument("--dry-run", action="store_true", help="count what would go; delete nothing")


def _pair(before: object, after: object) -> str:
    def text(x: object) -> str:
        if x is None:
            return "-"
        return f"{x:.3f}" if isinstance(x, float) else str(x)

    return f"{text(before)} -> {text(after)}"


def rebuild(args: argparse.Namespace) -> int:
    index = open_index(args)
    jobs = index.rebuild(args.namespace, args.records_per_cluster, wait=True)
    if args.json:
        print_json([dump(j) for j in jobs])
    elif not jobs:
        print(f'Nothing to rebuild in index "{index.name}"')
    else:
        rows = []
        for j in jobs:
            r = j.report or {}
            rows.append(
                [
                    ns_name(str(r.get("namespace", ""))),
                    j.status if j.error is None else f"{j.status}: {j.error}",
                    _pair(r.get("k_before"), r.get("k_after")),
                    _pair(
                        (r.get("balance_before") or {}).get("ratio"),
                        (r.get("balance_after") or {}).get("ratio"),
                    ),
                    _pair(r.get("recall_before"), r.get("recall_after")),
                    f"{float(r.get('seconds') or 0):.2f}",
                ]
            )
        print_table(
            ["NAMESPACE", "STATUS", "CLUSTERS", "LARGEST/MEAN", "RECALL@10 (EST.)", "SECONDS"],
            rows,
            right=["SECONDS"],
        )
    if not args.wait:
        return EXIT_OK
    codes = [exit_code_for(j) for j in jobs]
    return max(codes, default=EXIT_OK)


def vacuum(args: argparse.Namespace) -> int:
    index = open_index(args)
    report = index.vacuum(args.older_than, dry_run=args.dry_run)
    if args.json:
        print_json(report.as_dict())
        return EXIT_OK
    verb = "would delete" if args.dry_run else "deleted"
    print_fields(
        [
            ("retention", f"{report.older_than:g} s"),
            (f"manifests {verb}", f"{report.manifests:,}"),
            (f"data files {verb}", f"{report.data_files:,}"),
            (f"log entries {verb}", f"{report.log_entries:,}"),
            (f"job scratch {verb}", f"{report.staging:,}"),
            ("bytes", f"{report.bytes:,}"),
        ]
    )
    return EXIT_OK
