"""The fault suite's data, in its own database (``DATABASE_URL``): reference data, a grid cell,
a grid worker per phone and an operator for the screens. Idempotent. Prints their tokens as JSON.

Run by ``tests/faults/suite.py`` as ``python -m tests.faults.prepare PHONES``.
"""

from __future__ import annotations

import json
import os
import sys


def main(phones: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "command.test_settings")
    import django

    django.setup()
    from rest_framework.authtoken.models import Token

    from command.models import Team
    from command.services.accounts import user_ensure
    from command.services.dataset import reference_data_ensure
    from command.services.places import grid_cell_save
    from tests.conftest import BIG_A, CELL_A01, CELL_A02

    reference_data_ensure()
    big = grid_cell_save(code="A", name="A 大网格", geom=BIG_A, level="big")
    grid_cell_save(code="A-01", name="A-01 网格", geom=CELL_A01, parent=big)
    grid_cell_save(code="A-02", name="A-02 网格", geom=CELL_A02, parent=big)
    team = Team.objects.get(code="volunteer")
    tokens = {"phones": [], "operator": ""}
    for i in range(phones):
        user = user_ensure(username=f"fault-phone-{i}", password="fault-suite-pw-1", role="grid_worker", team=team)
        tokens["phones"].append(Token.objects.get_or_create(user=user)[0].key)
    operator = user_ensure(username="fault-operator", password="fault-suite-pw-1", role="operator")
    tokens["operator"] = Token.objects.get_or_create(user=operator)[0].key
    print(json.dumps(tokens))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4)
