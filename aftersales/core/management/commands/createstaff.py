"""`aftersales createstaff --store SLUG --username U --role agent [--password P]`: a staff login in a store.

Without --password it asks twice on the terminal, so a password need not land in the shell history.
An existing username is added to the store with the role instead (one person may work in several
stores); their password is left alone.
"""

from __future__ import annotations

import getpass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from aftersales.stores import services
from aftersales.stores.models import Role, Store


class Command(BaseCommand):
    help = "Create a staff login in a store with a role, or add an existing user to the store."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--store", required=True, help="the store's slug")
        parser.add_argument("--username", required=True)
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--password", help="asked on the terminal when left out")
        parser.add_argument("--email", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        store = Store.objects.filter(slug=options["store"]).first()
        if store is None:
            raise CommandError(f"no store with the slug {options['store']!r}")
        username, role = options["username"], options["role"]

        existing = get_user_model().objects.filter(username=username).first()
        if existing is not None:
            if options["password"]:
                raise CommandError(f"{username} already exists; leave out --password to add them to {store.slug}")
            services.add_member(store=store, user=existing, role=role)
            self.stdout.write(f"added {username} to {store.slug} as {role}")
            return

        password = options["password"] or self._ask_password()
        try:
            validate_password(password)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        services.create_staff_user(store=store, username=username, password=password, role=role,
                                   email=options["email"])
        self.stdout.write(f"created {username} in {store.slug} as {role}")

    def _ask_password(self) -> str:
        try:
            first = getpass.getpass("Password: ")
            second = getpass.getpass("Password (again): ")
        except (EOFError, KeyboardInterrupt) as exc:
            raise CommandError("no password given") from exc
        if not first:
            raise CommandError("the password is empty")
        if first != second:
            raise CommandError("the passwords do not match")
        return first
