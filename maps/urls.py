from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from maps import campaigns, ogc, pages, views, wall

urlpatterns: list[URLPattern | URLResolver] = [
    path("maps/layers/<str:layer>.geojson", views.layer_geojson, name="maps-layer-geojson"),
    path("maps/tiles/<str:layer>/<int:z>/<int:x>/<int:y>.pbf", views.layer_tile, name="maps-layer-tile"),
    path("maps/export/<str:layer>.<str:fmt>", views.layer_export, name="maps-layer-export"),
    path("maps/control-room/", wall.old_control_room, name="maps-control-room"),
    path("control/", wall.control, name="wall"),
    path("control/api/state.json", wall.state, name="wall-state"),
    path("control/api/panels.json", wall.panels, name="wall-panels"),
    path("control/api/incidents.json", wall.desk, name="wall-desk"),
    path("control/api/incidents/<int:pk>.json", wall.incident_detail, name="wall-incident"),
    path("police/", pages.police, name="police"),
    path("police/cameras/<int:camera_id>/stream/", pages.police_camera_stream, name="police-camera-stream"),
    path("maps/police/", pages.police_old_address, name="maps-police"),
    path("maps/print/", pages.printable, name="maps-print"),
    path("maps/campaigns/", campaigns.campaign_list, name="maps-campaigns"),
    path("maps/campaigns/<int:pk>/progress/", campaigns.campaign_progress, name="maps-campaign-progress"),
    path("ogc/", ogc.landing, name="ogc-landing"),
    path("ogc/api", ogc.api, name="ogc-api"),
    path("ogc/conformance", ogc.conformance, name="ogc-conformance"),
    path("ogc/collections", ogc.collections, name="ogc-collections"),
    path("ogc/collections/<str:collection_id>", ogc.collection, name="ogc-collection"),
    path("ogc/collections/<str:collection_id>/items", ogc.items, name="ogc-items"),
    path("ogc/collections/<str:collection_id>/items/<str:feature_id>", ogc.item, name="ogc-item"),
]
