"""`aftersales demo-data`: the demo marketplace, loaded once; a second run changes nothing and shows
the logins again."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from aftersales.demo import builder


class Command(BaseCommand):
    help = "Load the demo marketplace (two stores, staff, buyers, orders, cases in every state) once and print the logins."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--new-passwords", action="store_true",
                            help="give the demo logins new random passwords (when the saved list was lost)")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        if options["new_passwords"]:
            logins = builder.reset_passwords()
            self.stdout.write(f"new passwords for {len(logins)} demo logins")
            self._print_logins(logins)
            return
        result = builder.load_demo_data()
        figures = ", ".join(f"{value} {name.replace('_', ' ')}" for name, value in result.counts.items())
        if result.created:
            self.stdout.write(f"demo data loaded in {time.monotonic() - started:.1f}s: {figures}")
        else:
            self.stdout.write(f"demo data already there, nothing changed: {figures}")
        if result.logins:
            self._print_logins(result.logins)
            self.stdout.write(f"(kept in {result.logins_file}, which is not committed)")
        else:
            self.stdout.write(f"the demo passwords are not known here ({result.logins_file} is missing): "
                              "run `aftersales demo-data --new-passwords`")

    def _print_logins(self, logins: list[builder.Login]) -> None:
        self.stdout.write("\ndemo logins (random passwords, made when the demo was loaded):\n")
        self.stdout.write(builder.format_logins(logins))
        self.stdout.write("demo-operator signs in to /admin/; an api-token goes in the Authorization header "
                          "(Bearer) or the Authorize button of /api/docs.")
