"""The `aftersales` command: a thin front for Django's management commands.

`aftersales demo-data` runs the `demo_data` management command; any name not listed here is handed
to Django as it is (`aftersales shell`, `aftersales check`), so the CLI never hides a command.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

# Shown by `aftersales --help`, in this order; the key is what the user types.
COMMANDS: dict[str, str] = {
    "serve": "run the web server on 127.0.0.1:$PORT (and the periodic tasks when there is no broker)",
    "worker": "run background work: a Celery worker with beat, or the embedded scheduler without a broker",
    "migrate": "create or update the database tables",
    "demo-data": "load the demo marketplace: two stores, staff, buyers, orders and cases in every state",
    "import-orders": "import a shop's orders from a CSV file",
    "createstaff": "create a staff login in a store with a role (admin, supervisor, agent, warehouse, finance)",
    "workflow-diagram": "draw the lifecycle of each case kind from its transition table",
    "policy": "evaluate the return and refund policy for a set of facts",
}


def django_command(name: str) -> str:
    """`demo-data` → `demo_data`: Django's command names use underscores, ours read better with hyphens."""
    return name.replace("-", "_")


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [
        "usage: aftersales <command> [options]",
        "",
        "aftersales — after-sales service platform (电商售后服务平台)",
        "",
        "commands:",
        *(f"  {name.ljust(width)}  {summary}" for name, summary in COMMANDS.items()),
        "",
        "Any other Django management command works too (aftersales shell, aftersales check, ...).",
        "aftersales <command> --help shows the options of one command.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aftersales.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["aftersales", django_command(args[0]), *args[1:]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
