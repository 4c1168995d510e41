"""`aftersales policy evaluate FILE.json`: try the policy engine from the shell."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aftersales.policies.cli import evaluate_file


class Command(BaseCommand):
    help = "Evaluate policy facts from a JSON file and print the decision as JSON."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="verb", required=True)
        evaluate = sub.add_parser("evaluate", help="decide the request described by a facts file")
        evaluate.add_argument("file", help="path to the facts JSON (see aftersales/policies/examples/)")

    def handle(self, *args: Any, **options: Any) -> None:
        code = evaluate_file(options["file"])
        if code != 0:
            raise CommandError("the facts could not be decided (see the error above)", returncode=code)
