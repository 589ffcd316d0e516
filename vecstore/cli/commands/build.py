"""``vecstore build``: fold logged writes into an index's clusters now."""

from __future__ import annotations

import argparse

from vecstore.cli.exitcodes import exit_code_for
from vecstore.cli.options import DEFAULT_NAMESPACE_NAME, index_option, namespace, open_index
from vecstore.cli.output import ns_name, print_json, print_table
from vecstore.cli.registry import Commands


def register(commands: Commands) -> None:
    p = commands.command(
        "build",
        build,
        "fold recent writes into an index's clusters",
        "Fold the writes logged since the last build (upserts, updates, deletes) into "
        "the clusters of one namespace, or of every namespace that has some, as a build "
        "job (Index.list_jobs / cancel_job in Python; taken over and rerun if this "
        "process dies). Waits for a build another process is running on the same namespace. "
        "Exits like `import --wait`: 0 completed, 1 failed, 2 cancelled.",
    )
    index_option(p)
    p.add_argument(
        "--namespace",
        type=namespace,
        metavar="NS",
        help=f"only this namespace ({DEFAULT_NAMESPACE_NAME}: the default one)",
    )
    p.add_argument(
        "--wait",
        action="store_true",
        default=True,
        help="run the build job here until it ends (the default; a build runs in this process)",
    )


def build(args: argparse.Namespace) -> int:
    index = open_index(args)
    results = index.build(namespace=args.namespace)  # unknown namespace: exit 64
    job = results.job
    if args.json:
        print_json(
            {
                ns: {
                    "status": r.status,
                    "entries": r.entries,
                    "applied_lsn": r.applied_lsn,
                    "version": None if r.manifest is None else r.manifest.version,
                    "clusters_rewritten": r.clusters_rewritten,
                    "seconds": round(r.seconds, 3),
                }
                for ns, r in results.items()
            }
        )
    elif not results:
        print(f'Nothing to build in index "{index.name}" (job {job.id}: {job.status})')
    else:
        print_table(
            ["NAMESPACE", "STATUS", "ENTRIES", "VERSION", "CLUSTERS REWRITTEN", "SECONDS"],
            [
                [
                    ns_name(ns),
                    r.status,
                    f"{r.entries:,}",
                    "-" if r.manifest is None else str(r.manifest.version),
                    f"{r.clusters_rewritten:,}",
                    f"{r.seconds:.2f}",
                ]
                for ns, r in sorted(results.items())
            ],
            right=["ENTRIES", "VERSION", "CLUSTERS REWRITTEN", "SECONDS"],
        )
        print(f"Build job {job.id}: {job.status}")
    return exit_code_for(job)
