"""``python -m vecstore.server``: serve, or manage projects and API keys.

    python -m vecstore.server --store ./data [--host 127.0.0.1] [--port 5080]
    python -m vecstore.server --store ./data projects create|list|delete ...
    python -m vecstore.server --store ./data api-keys create --project P --role ReadOnly
    python -m vecstore.server --store ./data api-keys list|delete ...

(``vecstore serve``, ``vecstore projects`` and ``vecstore api-keys`` call
the same functions.)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from vecstore.errors import VecstoreError
from vecstore.server.run import DEFAULT_HOST, DEFAULT_PORT, run
from vecstore.settings import settings


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vecstore.server", description=__doc__.split("\n")[0])
    p.add_argument("--store", default=settings().store)
    p.add_argument("--config", default=settings().config)
    p.add_argument("--scheduler", default=settings().scheduler)
    p.add_argument("--host", default=DEFAULT_HOST)
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = p.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve the REST API (the default)")

    pr = sub.add_parser("projects", help="create, list or delete projects")
    prs = pr.add_subparsers(dest="action", required=True)
    c = prs.add_parser("create")
    c.add_argument("name")
    c.add_argument("--description", default="")
    prs.add_parser("list")
    d = prs.add_parser("delete")
    d.add_argument("name")
    d.add_argument("--force", action="store_true", help="also delete the project's indexes")

    for name in ("api-keys", "keys"):
        k = sub.add_parser(name, help="create, list or delete API keys")
        ks = k.add_subparsers(dest="action", required=True)
        c = ks.add_parser("create")
        c.add_argument("--project", required=True)
        c.add_argument("--role", default="ReadWrite", choices=["ReadWrite", "ReadOnly"])
        c.add_argument("--name", default="")
        lst = ks.add_parser("list")
        lst.add_argument("--project")
        d = ks.add_parser("delete")
        d.add_argument("id")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command in (None, "serve"):
        run(args.store, args.host, args.port, args.config, args.scheduler, args.log_level)
        return 0
    from vecstore.server.auth import AuthStore
    from vecstore.storage import Store

    auth = AuthStore(Store(args.store))
    try:
        if args.command == "projects":
            if args.action == "create":
                print(json.dumps(auth.create_project(args.name, args.description).model_dump(mode="json")))
            elif args.action == "list":
                for proj in auth.list_projects():
                    print(json.dumps(proj.model_dump(mode="json")))
            else:
                auth.delete_project(args.name, force=args.force)
        elif args.action == "create":
            record, key = auth.create_key(args.project, args.role, args.name)
            print(json.dumps({**record.public(), "key": key}))
            print("Store this key now: it is not shown again.", file=sys.stderr)
        elif args.action == "list":
            for rec in auth.list_keys(args.project):
                print(json.dumps(rec.public()))
        else:
            auth.delete_key(args.id)
    except VecstoreError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
