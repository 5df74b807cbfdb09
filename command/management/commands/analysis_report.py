"""``manage.py analysis_report``: write the period report (HTML, PDF, XLSX, CSV) to a directory.

    manage.py analysis_report                      # the last 7 days up to today's end: the weekly summary
    manage.py analysis_report --days 30
    manage.py analysis_report --start 2026-11-01 --end 2026-11-30 --formats html,pdf
    manage.py analysis_report --out /srv/reports

Files are named ``gridcommand-report-<first day>-<last day>.<ext>``; see README for the cron lines.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone, translation

from command.analysis.report import (
    period_check,
    report_build,
    report_csv_zip,
    report_html,
    report_pdf,
    report_xlsx,
)
from command.analysis.views import BadPeriod, period_from

FORMATS = ("html", "pdf", "xlsx", "csv")


class Command(BaseCommand):
    help = "Write the period report (hotspots, grid-cell performance, trends, camera coverage) as HTML, PDF, XLSX, CSV."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--start", help="first day (YYYY-MM-DD) or a date-time")
        parser.add_argument("--end", help="last day, included (YYYY-MM-DD) or a date-time; default today")
        parser.add_argument("--days", help="the period's length back from --end when --start is not given (default 7)")
        parser.add_argument("--out", help="directory (default ANALYSIS_REPORT_DIR)")
        parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated: html,pdf,xlsx,csv")
        parser.add_argument("--language", default=settings.LANGUAGE_CODE, help="zh-hans (default) or en")

    def handle(self, *args: Any, **options: Any) -> None:
        formats = [f.strip() for f in options["formats"].split(",") if f.strip()]
        unknown = sorted(set(formats) - set(FORMATS))
        if unknown or not formats:
            raise CommandError(f"--formats: choose from {', '.join(FORMATS)} (got {', '.join(unknown) or 'none'})")
        if options["language"] not in {code for code, _name in settings.LANGUAGES}:
            raise CommandError(f"--language: one of {', '.join(code for code, _n in settings.LANGUAGES)}")
        params = {k: options[k] for k in ("start", "end", "days") if options[k]}
        with translation.override(options["language"]):  # the reasons too, whatever was active before
            try:
                start, end = period_from(params)
                period_check(start, end)
            except BadPeriod as exc:
                raise CommandError(
                    f"--{exc.args[0]}: give a date as YYYY-MM-DD (or a date-time; days: 1 to 366)"
                ) from exc
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        out = Path(options["out"] or settings.ANALYSIS_REPORT_DIR)
        out.mkdir(parents=True, exist_ok=True)
        with translation.override(options["language"]):
            report = report_build(start=start, end=end)
            html = report_html(report)
            last = timezone.localtime(end - timedelta(seconds=1))
            stem = out / f"gridcommand-report-{timezone.localtime(start):%Y%m%d}-{last:%Y%m%d}"
            written = []
            for fmt in formats:
                if fmt == "html":
                    path, data = stem.with_suffix(".html"), html.encode()
                elif fmt == "pdf":
                    path, data = stem.with_suffix(".pdf"), report_pdf(html)
                elif fmt == "xlsx":
                    path, data = stem.with_suffix(".xlsx"), report_xlsx(report)
                else:
                    path, data = Path(f"{stem}-csv.zip"), report_csv_zip(report)
                path.write_bytes(data)
                written.append(str(path))
        behind = ", ".join(c.code for c in report.behind) or "-"
        self.stdout.write(
            f"analysis_report: {len(report.cells)} cell rows, {len(report.hotspots)} hotspots; behind: {behind}"
        )
        for name in written:
            self.stdout.write(f"  {name}")
