"""``manage.py tips_verify``: check the supervision tips' hash chain (command/services/tips.py).
Exit status 1 and one line per problem when any entry or tip was changed, removed or reordered;
on success it prints the head hash, to be written down elsewhere (it anchors the chain)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from command.services.tips import tips_verify


class Command(BaseCommand):
    help = "Verify the supervision tips' hash chain"

    def handle(self, *args: Any, **options: Any) -> None:
        check = tips_verify()
        if not check.ok:
            for problem in check.problems:
                self.stderr.write(problem)
            raise CommandError(f"tip chain broken: {len(check.problems)} problem(s) in {check.entries} entries")
        self.stdout.write(f"tip chain intact: {check.entries} entries, {check.tips} tips, head {check.head}")
