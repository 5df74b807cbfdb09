"""Snapshots of the SQL every layer's declaration generates (command/layers.py through
command/layer_queries.py): a change of a declaration or of a builder shows as a diff of
tests/command/snapshots/layer_sql.txt. After checking the diff, rewrite the snapshot with
``GC_SNAPSHOT_UPDATE=1 pytest tests/command/test_layer_sql.py``."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from django.test import override_settings

from command.layer_queries import FeatureQuery, feature_collection_sql, layer_rows_sql, tile_sql
from command.layers import LAYERS, LayerGrant

SNAPSHOT = Path(__file__).parent / "snapshots" / "layer_sql.txt"

QUERY = FeatureQuery(
    bbox=(117.0, 39.0, 117.01, 39.01),
    start=datetime(2026, 1, 1, tzinfo=UTC),
    end=datetime(2026, 2, 1, tzinfo=UTC),
    limit=100,
    offset=10,
)


def _filtered(name: str) -> FeatureQuery:
    """QUERY with the category and status filters the layer takes."""
    layer = LAYERS[name]
    return FeatureQuery(
        **{
            **QUERY.__dict__,
            "categories": ("fire",) if layer.source.category_sql else (),
            "statuses": ("new",) if layer.source.status_sql else (),
        }
    )


def _generated() -> str:
    parts: list[str] = []
    for name, layer in LAYERS.items():
        full = LayerGrant(layer, (*layer.public_fields, *layer.sensitive_fields), bool(layer.sensitive_fields))
        public = LayerGrant(layer, layer.public_fields, False)
        # personal data masked, narrowed to two grid cells (command/access.py)
        masked = LayerGrant(layer, full.fields, False, layer.sensitive_fields, (7, 8))
        query = _filtered(name)
        sections = {
            "rows": layer_rows_sql(full, query),
            "geojson": feature_collection_sql(public, query, with_ids=True),
            "tile z17": tile_sql(full, 17, 105_000, 48_000, with_ids=True),
            "tile z12": tile_sql(public, 12, 3_300, 1_500),
            "tile z17 gcj02": tile_sql(public, 17, 105_000, 48_000, affine=(1.0, 0.0, 0.0, 1.0, 500.0, -300.0)),
            "rows masked in cells": layer_rows_sql(masked, query),
            "tile z17 masked in cells": tile_sql(masked, 17, 105_000, 48_000),
        }
        for label, (sql, params) in sections.items():
            shown = {k: (round(v, 9) if isinstance(v, float) else v) for k, v in sorted(params.items())}
            parts.append(f"-- {name}: {label}\n{sql}\n-- params: {shown!r}\n")
    return "\n".join(parts)


@override_settings(HOTSPOT_RADIUS_M=150, HOTSPOT_MIN_INCIDENTS=5)
def test_generated_layer_sql_matches_its_snapshot() -> None:
    generated = _generated()
    if os.environ.get("GC_SNAPSHOT_UPDATE") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(generated, encoding="utf-8")
    assert generated == SNAPSHOT.read_text(encoding="utf-8"), (
        "the layer SQL changed: check the diff and rewrite with GC_SNAPSHOT_UPDATE=1"
    )
