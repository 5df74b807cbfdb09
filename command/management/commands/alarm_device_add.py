"""``manage.py alarm_device_add CODE --kind sos --household ID [--contact-name N --contact-phone P]``:
register a home alarm to a household and print its secret (shown this once: it goes into the
device). ``--rotate`` gives an existing device a new secret instead."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from command.models import AlarmDevice
from command.services.alarms import alarm_device_register, alarm_device_rotate_secret


class Command(BaseCommand):
    help = "Register a home alarm device to a household and print its secret"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("code")
        parser.add_argument("--kind", choices=AlarmDevice.Kind.values, default="sos")
        parser.add_argument("--household", type=int)
        parser.add_argument("--wearer", default="")
        parser.add_argument("--contact-name", default="")
        parser.add_argument("--contact-phone", default="")
        parser.add_argument("--heartbeat-seconds", type=int, default=300)
        parser.add_argument("--rotate", action="store_true", help="a new secret for an existing device")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["rotate"]:
                existing = AlarmDevice.objects.filter(code=options["code"]).first()
                if existing is None:
                    raise CommandError(f"no device {options['code']}")
                device, secret = alarm_device_rotate_secret(actor=None, device_id=existing.pk)
            else:
                if options["household"] is None:
                    raise CommandError("--household ID is required to register a device")
                device, secret = alarm_device_register(
                    actor=None,
                    code=options["code"],
                    kind=options["kind"],
                    household_id=options["household"],
                    wearer_name=options["wearer"],
                    contact_name=options["contact_name"],
                    contact_phone=options["contact_phone"],
                    heartbeat_seconds=options["heartbeat_seconds"],
                )
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
        self.stdout.write(f"device {device.code} (id {device.pk}) secret: {secret}")
