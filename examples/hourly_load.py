"""An hourly load: the same `vecstore load` every hour, as a cron line and as an Airflow task.

A warehouse job (Spark, dbt, BigQuery ``EXPORT DATA``) keeps writing Parquet
files under one export directory, one sub-directory per namespace, with ids
and id prefixes to delete in ``<namespace>/deletes/`` (docs/loads.md). Every
hour the same load runs over the whole directory: the index's load history
skips the files it loaded before, so each file is loaded exactly once, also
after a crash or a cancelled run. Both schedulers call :func:`run_load`,
which runs ``vecstore load ... --wait`` and returns its exit status:

    0 Completed, 1 Failed, 2 Cancelled, 3 timed out (the CLI cancelled the load),
    64 bad arguments, 69 not available, 130 / 143 interrupted (the load was cancelled).

cron (``crontab -e``; the script exits with that status, so cron mails or your
wrapper alerts on anything but 0)::

    5 * * * *  VECSTORE_STORE=s3://my-store/vecstore VECSTORE_CONFIG=/etc/vecstore/config.json \\
      /opt/vecstore/.venv/bin/python /opt/vecstore/examples/hourly_load.py \\
      s3://exports/embeddings/ --index docs --integration exports --timeout 3000 \\
      >> /var/log/vecstore-load.log 2>&1

Airflow: put this file in the DAGs folder; where ``airflow`` imports, it
defines the DAG ``vecstore_hourly_load`` (one task, hourly, settings from the
``VECSTORE_*`` environment and the ``VECSTORE_LOAD_URI`` /
``VECSTORE_LOAD_INDEX`` variables). Without Airflow the module still imports
and ``dag`` is None.

    python examples/hourly_load.py --help
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NoReturn

EXIT_OK = 0
EXIT_USAGE = 64
DEFAULT_TIMEOUT = 50 * 60.0  # below the hour: a stuck load is cancelled before the next run


def run_load(
    uri: str,
    index: str,
    *,
    store: str | None = None,
    integration: str | None = None,
    error_mode: str = "continue",
    force: bool = False,
    timeout: float | None = DEFAULT_TIMEOUT,
    json_output: bool = False,
) -> int:
    """Run ``vecstore load URI --index INDEX --wait`` in this process; its exit status.

    ``store``: the store root (default ``$VECSTORE_STORE``); the rest as the
    CLI options of the same names. A load is all-or-nothing: on any status
    but 0 nothing of this run is visible, and the next run loads its files.
    """
    from vecstore.cli import main

    argv: list[str] = []
    if store is not None:
        argv += ["--store", store]
    if json_output:
        argv.append("--json")
    argv += ["load", uri, "--index", index, "--wait", "--no-progress", "--error-mode", error_mode]
    if integration is not None:
        argv += ["--integration", integration]
    if force:
        argv.append("--force")
    if timeout is not None:
        argv += ["--timeout", str(timeout)]
    return main(argv)


# ---------------------------------------------------------------- Airflow

dag: Any = None

try:  # pragma: no cover - only where Airflow is installed
    from airflow import DAG
    from airflow.exceptions import AirflowException

    try:
        from airflow.providers.standard.operators.python import PythonOperator  # Airflow 3
    except ImportError:
        from airflow.operators.python import PythonOperator  # Airflow 2
except ImportError:
    pass
else:  # pragma: no cover

    def _airflow_task(**_: Any) -> None:
        code = run_load(
            os.environ["VECSTORE_LOAD_URI"],
            os.environ["VECSTORE_LOAD_INDEX"],
            integration=os.environ.get("VECSTORE_LOAD_INTEGRATION"),
        )
        if code != EXIT_OK:  # Airflow retries the task; the load history makes that safe
            raise AirflowException(f"vecstore load exited {code}")

    with DAG(
        dag_id="vecstore_hourly_load",
        schedule=timedelta(hours=1),
        start_date=datetime(2026, 1, 1),
        catchup=False,  # one run loads everything new: no need to replay missed hours
        max_active_runs=1,  # one load at a time into the index
        default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    ) as dag:
        PythonOperator(
            task_id="vecstore_load",
            python_callable=_airflow_task,
            execution_timeout=timedelta(minutes=55),  # above --timeout: the CLI cancels first
        )


# ------------------------------------------------------------------- cron


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # exit 64 (EX_USAGE), as vecstore does
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    p = _Parser(
        description="Load new files of URI into an index (run it hourly from cron).",
        epilog=__doc__.split("cron (", 1)[1].split("Airflow:", 1)[0].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("uri", metavar="URI")
    p.add_argument("--index", required=True)
    p.add_argument("--store", help="the store root (default: $VECSTORE_STORE)")
    p.add_argument("--integration", metavar="ID")
    p.add_argument("--error-mode", choices=["continue", "abort"], default="continue")
    p.add_argument("--force", action="store_true")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    p.add_argument("--json", action="store_true", help="print the final load record as JSON")
    args = p.parse_args(argv)
    return run_load(
        args.uri,
        args.index,
        store=args.store,
        integration=args.integration,
        error_mode=args.error_mode,
        force=args.force,
        timeout=args.timeout,
        json_output=args.json,
    )


if __name__ == "__main__":
    sys.exit(main())
