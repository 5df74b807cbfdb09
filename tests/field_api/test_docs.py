"""The OpenAPI schema and the docs page: served without any CDN, GeoJSON fields described."""

from __future__ import annotations


def test_docs_page_uses_no_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()
    assert "/static/drf_spectacular_sidecar/" in html


def test_schema_describes_geojson_point_and_multipart(client):
    schema = client.get("/api/schema/?format=json").json()
    report = schema["paths"]["/api/v1/reports/"]["post"]
    assert set(report["requestBody"]["content"]) >= {"application/json", "multipart/form-data"}
    ref = report["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    location = schema["components"]["schemas"][ref]["properties"]["location"]
    assert location["properties"]["type"]["enum"] == ["Point"]
    assert location["properties"]["coordinates"]["maxItems"] == 2
    assignments = schema["paths"]["/api/v1/assignments/"]["get"]["responses"]["200"]
    ref = assignments["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "features" in schema["components"]["schemas"][ref]["properties"]
