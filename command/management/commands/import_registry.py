"""``manage.py import_registry FILE``: the initial household and person registry from a CSV
(UTF-8 or GBK) or XLSX file, one row per person (command/services/registry_import.py). Prints
the rejected rows with their reasons; the good households are imported (``--strict``: nothing
when any row is rejected; ``--dry-run``: only the report)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from command.services.registry_import import registry_import, registry_rows_read


class Command(BaseCommand):
    help = "Import households and their members from a CSV (UTF-8 or GBK) or XLSX file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")
        parser.add_argument("--encoding", help="utf-8 or gbk (a CSV's encoding; found by itself when not given)")
        parser.add_argument("--strict", action="store_true", help="import nothing when any row is rejected")
        parser.add_argument("--dry-run", action="store_true", help="check only; import nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        try:
            rows = registry_rows_read(path.read_bytes(), filename=path.name, encoding=options.get("encoding"))
            report = registry_import(rows=rows, strict=options["strict"], dry_run=options["dry_run"])
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
        for rejected in report.rejected:
            self.stdout.write(f"row {rejected.row}: {' '.join(rejected.reasons)}")
        verb = "imported" if report.imported else "not imported"
        self.stdout.write(
            f"{report.rows} rows: {report.households} households with {report.persons} persons {verb}; "
            f"{len(report.rejected)} rows rejected"
        )
