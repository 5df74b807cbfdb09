"""``manage.py import_layer FILE --layer cells|buildings``: GeoJSON or Shapefile through GDAL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from command.models import GridCell
from command.services.imports import TARGETS, layer_import


class Command(BaseCommand):
    help = "Import grid cells or building footprints (WGS 84 polygons) from a GeoJSON file or a Shapefile."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="a .geojson/.json file or a .shp (with its .dbf/.shx/.prj)")
        parser.add_argument("--layer", required=True, choices=sorted(TARGETS))
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="FIELD=ATTRIBUTE",
            help="our field name = the file's attribute name, e.g. --map address=ADDR (repeatable)",
        )
        parser.add_argument(
            "--encoding", default="utf-8", help="text encoding of the attributes (a Shapefile without .cpg: often gbk)"
        )
        parser.add_argument("--level", choices=GridCell.Level.values, default=GridCell.Level.CELL, help="for cells")

    def handle(self, *args: Any, **options: Any) -> None:
        field_map = {}
        for item in options["map"]:
            if "=" not in item:
                raise CommandError(f"--map takes FIELD=ATTRIBUTE, got {item!r}")
            ours, theirs = item.split("=", 1)
            field_map[ours.strip()] = theirs.strip()
        try:
            count = layer_import(
                path=options["path"],
                layer=options["layer"],
                field_map=field_map,
                level=options["level"],
                encoding=options["encoding"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(f"import_layer: {count} {options['layer']} imported from {options['path']}")
