"""Writes the case lifecycle diagrams (docs/workflows) from the transition tables, or checks them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aftersales.cases.diagrams import render_all


def differences(directory: Path, pages: dict[str, str]) -> list[str]:
    """What differs between the directory and the generated pages, one line per file, sorted."""
    found = []
    for name, content in sorted(pages.items()):
        path = directory / name
        if not path.exists():
            found.append(f"missing: {name}")
        elif path.read_text(encoding="utf-8") != content:
            found.append(f"out of date: {name}")
    if directory.is_dir():
        # A page left behind by a kind that no longer exists would keep describing it.
        for path in sorted(directory.glob("*.md")):
            if path.name not in pages:
                found.append(f"not generated: {path.name}")
    return found


class Command(BaseCommand):
    help = "Write one Mermaid state diagram per case kind from the transition tables (or --check them)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", default="docs/workflows",
                            help="directory for the pages, relative to the current directory (default docs/workflows)")
        parser.add_argument("--check", action="store_true",
                            help="write nothing; exit 1 and list the files that differ from the tables")

    def handle(self, *args: Any, **options: Any) -> None:
        directory = Path(options["output"])
        pages = render_all()
        if options["check"]:
            found = differences(directory, pages)
            if found:
                for line in found:
                    self.stderr.write(line)
                raise CommandError(
                    f"{len(found)} workflow page(s) differ from the transition tables; "
                    "run `aftersales workflow-diagram` and commit the result",
                    returncode=1,
                )
            self.stdout.write(f"{len(pages)} workflow pages are up to date in {directory}")
            return
        directory.mkdir(parents=True, exist_ok=True)
        written = 0
        for name, content in pages.items():
            path = directory / name
            if not path.exists() or path.read_text(encoding="utf-8") != content:
                path.write_text(content, encoding="utf-8")
                written += 1
        self.stdout.write(f"{written} of {len(pages)} workflow pages written to {directory}")
