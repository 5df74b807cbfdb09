"""Tiles are compressed with lz4 instead of pglz where the server has it (PostgreSQL 14+ built
with lz4, as Debian's): storing a 37 KB tile took 0.8 ms with pglz and 0.16 ms with lz4 on the
bench database. Elsewhere the column keeps the server's default."""

from typing import Any

from django.db import migrations


def _lz4_available(schema_editor: Any) -> bool:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        row = cursor.fetchone()
    return bool(row and row[0])


def lz4(apps: Any, schema_editor: Any) -> None:
    if _lz4_available(schema_editor):
        schema_editor.execute("ALTER TABLE maps_tilecache ALTER COLUMN data SET COMPRESSION lz4")


def pglz(apps: Any, schema_editor: Any) -> None:
    if _lz4_available(schema_editor):
        schema_editor.execute("ALTER TABLE maps_tilecache ALTER COLUMN data SET COMPRESSION pglz")


class Migration(migrations.Migration):
    dependencies = [("maps", "0002_tilecache_unlogged")]

    operations = [migrations.RunPython(lz4, pglz, elidable=True)]
