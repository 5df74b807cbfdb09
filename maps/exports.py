# ruff: noqa: S608  -- SQL comes from command.layer_queries (fixed registry); request values are bound.
"""Exports of a permitted layer and bbox as GeoJSON, CSV, GeoPackage or Shapefile.

GeoJSON and CSV stream from a server-side cursor on a connection of their own (an async
iterator, so Daphne sends chunks as PostgreSQL produces them instead of buffering the file).
GeoPackage and Shapefile are written by GDAL (ogr2ogr) from the same masked GeoJSON, then
streamed from disk. Every format selects exactly the fields of the viewer's grant.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from django.db import connection

from command import db_async
from command.layer_queries import FeatureQuery, layer_rows_sql
from command.layers import LayerGrant

CHUNK_ROWS = 2000
FORMATS = {
    "geojson": ("application/geo+json", "geojson"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "gpkg": ("application/geopackage+sqlite3", "gpkg"),
    "shp": ("application/zip", "shp.zip"),
}


def _feature_sql(grant: LayerGrant, query: FeatureQuery) -> tuple[str, dict[str, Any]]:
    rows_sql, params = layer_rows_sql(grant, query)
    props = "json_build_object(" + ", ".join(f"'{f}', r.{f}" for f in grant.fields) + ")" if grant.fields else "'{}'"
    return (
        "SELECT json_build_object('type', 'Feature', 'id', r._id, 'geometry', ST_AsGeoJSON(r._geom, 7)::json, "
        f"'properties', {props})::text FROM ({rows_sql}) r",
        params,
    )


def _csv_sql(grant: LayerGrant, query: FeatureQuery) -> tuple[str, dict[str, Any]]:
    rows_sql, params = layer_rows_sql(grant, query)
    cols = "".join(f", r.{f}" for f in grant.fields)
    return f"SELECT ST_AsText(r._geom){cols} FROM ({rows_sql}) r", params


async def _rows(sql: str, params: dict[str, Any]) -> AsyncIterator[list[tuple[Any, ...]]]:
    conn = await psycopg.AsyncConnection.connect(**db_async.conninfo())
    async with conn, conn.cursor(name="gc_export") as cursor:
        await cursor.execute(sql, params)
        while rows := await cursor.fetchmany(CHUNK_ROWS):
            yield rows


async def geojson_stream(grant: LayerGrant, query: FeatureQuery) -> AsyncIterator[bytes]:
    sql, params = _feature_sql(grant, query)
    yield b'{"type":"FeatureCollection","features":['
    first = True
    async for rows in _rows(sql, params):
        text = ",".join(r[0] for r in rows)
        yield (text if first else "," + text).encode()
        first = False
    yield b"]}\n"


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_value(value: Any) -> Any:
    """A cell as text a spreadsheet will not run: text starting like a formula (``=``, ``+``,
    ``-``, ``@``) gets a leading apostrophe (OWASP's CSV-injection advice); numbers stay numbers."""
    if isinstance(value, list):
        value = ";".join(str(v) for v in value)
    elif hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


async def csv_stream(grant: LayerGrant, query: FeatureQuery) -> AsyncIterator[bytes]:
    sql, params = _csv_sql(grant, query)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["wkt", *grant.fields])
    yield ("\ufeff" + buffer.getvalue()).encode()  # BOM: spreadsheet programs read UTF-8 Chinese text
    async for rows in _rows(sql, params):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerows([_csv_value(v) for v in row] for row in rows)
        yield buffer.getvalue().encode()


def gdal_export(grant: LayerGrant, query: FeatureQuery, *, fmt: str) -> AsyncIterator[bytes]:
    """GeoPackage or zipped Shapefile written by ogr2ogr from the masked GeoJSON; yields the file
    in chunks and removes the working directory when done."""
    workdir = tempfile.mkdtemp(prefix="gc-export-")
    try:
        source = os.path.join(workdir, "features.geojson")
        sql, params = _feature_sql(grant, query)
        with open(source, "w", encoding="utf-8") as out, connection.cursor() as cursor:
            out.write('{"type":"FeatureCollection","features":[')
            cursor.execute(sql, params)
            first = True
            while rows := cursor.fetchmany(CHUNK_ROWS):
                out.write(("" if first else ",") + ",".join(r[0] for r in rows))
                first = False
            out.write("]}")
        name = grant.layer.name
        if fmt == "gpkg":
            target = os.path.join(workdir, f"{name}.gpkg")
            args = ["-f", "GPKG", target, source, "-nln", name]
        else:
            target_dir = os.path.join(workdir, name)
            os.mkdir(target_dir)
            args = ["-f", "ESRI Shapefile", target_dir, source, "-nln", name, "-lco", "ENCODING=UTF-8"]
        result = subprocess.run(
            ["ogr2ogr", *args], capture_output=True, text=True, timeout=300, check=False, cwd=workdir
        )
        if result.returncode != 0:
            raise RuntimeError(f"ogr2ogr failed: {result.stderr[-500:]}")
        if fmt == "shp":
            target = os.path.join(workdir, f"{name}.zip")
            with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
                for entry in sorted(os.listdir(target_dir)):
                    archive.write(os.path.join(target_dir, entry), arcname=entry)
        handle = open(target, "rb")  # noqa: SIM115 - closed below, after the directory is gone
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    shutil.rmtree(workdir, ignore_errors=True)  # the open handle keeps the file readable

    async def chunks() -> AsyncIterator[bytes]:
        # an async iterator, so Daphne streams it (Django buffers a sync one under ASGI)
        with handle:
            while chunk := handle.read(256 * 1024):
                yield chunk

    return chunks()


def export_ids(grant: LayerGrant, query: FeatureQuery) -> list[int]:
    rows_sql, params = layer_rows_sql(grant, query)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT array_agg(_id) FROM ({rows_sql}) r", params)
        row = cursor.fetchone()
    return list(row[0] or []) if row else []
