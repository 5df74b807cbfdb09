"""The app's database sessions, on Django's connections and on the async pool of the lean paths."""

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import connection

from command.db_async import pool, pools_close


def _async_jit() -> Any:
    async def show() -> Any:
        try:
            async with (await pool()).connection() as conn:
                row = await (await conn.execute("SHOW jit")).fetchone()
                return row[0] if row else None
        finally:
            await pools_close()

    return async_to_sync(show)()


@pytest.mark.django_db
def test_jit_is_off_on_every_app_connection():
    # PostGIS's function costs make PostgreSQL JIT-compile tile queries for longer than they run
    # (0.4-1.2 s for z12-z13 incident tiles that run in 0.1-0.2 s on the scale data).
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
    assert _async_jit() == "off"


def test_db_jit_keeps_the_url_options(monkeypatch):
    # given a DATABASE_URL with its own startup options
    import importlib

    import command.settings as app_settings

    monkeypatch.setenv("DATABASE_URL", "postgres://u@db/gc?options=-c%20statement_timeout%3D5000")
    try:
        # when the settings are read with and without DB_JIT
        monkeypatch.delenv("DB_JIT", raising=False)
        off = importlib.reload(app_settings).DATABASES["default"]["OPTIONS"]["options"]
        monkeypatch.setenv("DB_JIT", "1")
        on = importlib.reload(app_settings).DATABASES["default"]["OPTIONS"]["options"]
    finally:
        monkeypatch.undo()
        importlib.reload(app_settings)
    # then the URL's options stay, and JIT is off unless DB_JIT=1
    assert off == "-c statement_timeout=5000 -c jit=off"
    assert on == "-c statement_timeout=5000"
