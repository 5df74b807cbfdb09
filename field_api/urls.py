"""Routes of the field API (versioned under /api/v1/), its schema and docs, Open311 and /field/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from field_api import open311, personal, pwa, registry, views, work

app_name = "field_api"

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/v1/auth/token/", views.TokenView.as_view(), name="token"),
    path("api/v1/auth/token/session/", views.SessionTokenView.as_view(), name="token-session"),
    path("api/v1/categories/", views.CategoryListView.as_view(), name="categories"),
    path("api/v1/reports/", views.ReportView.as_view(), name="reports"),
    path("api/v1/photos/<int:pk>/", views.PhotoView.as_view(), name="photo"),
    path("api/v1/photos/<int:pk>/thumbnail/", views.PhotoThumbnailView.as_view(), name="photo-thumbnail"),
    path("api/v1/layers/<str:layer>/features/<int:feature_id>/", personal.LayerFeatureView.as_view(), name="feature"),
    path(
        "api/v1/layers/<str:layer>/features/<int:feature_id>/unmask/",
        personal.LayerFeatureUnmaskView.as_view(),
        name="feature-unmask",
    ),
    path("api/v1/me/", work.MeView.as_view(), name="me"),
    path("api/v1/me/duty/", work.DutyView.as_view(), name="duty"),
    path("api/v1/pings/", work.PingView.as_view(), name="pings"),
    path("api/v1/assignments/", work.AssignmentListView.as_view(), name="assignments"),
    path("api/v1/incidents/<int:pk>/", work.IncidentDetailView.as_view(), name="incident"),
    path("api/v1/incidents/<int:pk>/accept/", work.IncidentAcceptView.as_view(), name="incident-accept"),
    path("api/v1/incidents/<int:pk>/arrive/", work.IncidentArriveView.as_view(), name="incident-arrive"),
    path("api/v1/incidents/<int:pk>/resolve/", work.IncidentResolveView.as_view(), name="incident-resolve"),
    path("api/v1/incidents/<int:pk>/hand-back/", work.IncidentHandBackView.as_view(), name="incident-hand-back"),
    path("api/v1/incidents/<int:pk>/dispatch/", work.IncidentDispatchView.as_view(), name="incident-dispatch"),
    path("api/v1/incidents/<int:pk>/close/", work.IncidentCloseView.as_view(), name="incident-close"),
    path("api/v1/incidents/<int:pk>/cancel/", work.IncidentCancelView.as_view(), name="incident-cancel"),
    path("api/v1/households/", registry.HouseholdListView.as_view(), name="households"),
    path("api/v1/households/<int:pk>/visits/", registry.HouseholdVisitView.as_view(), name="household-visits"),
    path(
        "api/v1/buildings/<int:pk>/households/", registry.BuildingHouseholdsView.as_view(), name="building-households"
    ),
    path("api/v1/buildings/<int:pk>/residents/", registry.ResidentLookupView.as_view(), name="resident-lookup"),
    path("api/v1/businesses/", registry.BusinessListView.as_view(), name="businesses"),
    path("api/v1/campaigns/", registry.CampaignListView.as_view(), name="campaigns"),
    path("api/v1/campaigns/<int:pk>/", registry.CampaignDetailView.as_view(), name="campaign"),
    path("api/v1/campaigns/<int:pk>/close/", registry.CampaignCloseView.as_view(), name="campaign-close"),
    path("api/v1/campaigns/<int:pk>/targets/", registry.CampaignTargetListView.as_view(), name="campaign-targets"),
    path("api/v1/campaigns/<int:pk>/progress/", registry.CampaignProgressView.as_view(), name="campaign-progress"),
    path("api/v1/campaign-marks/", registry.CampaignMarkView.as_view(), name="campaign-marks"),
    path("api/v1/registry/import/", registry.RegistryImportView.as_view(), name="registry-import"),
    path("api/v1/incidents/<int:pk>/priority/", work.IncidentPriorityView.as_view(), name="incident-priority"),
    path("api/v1/incidents/<int:pk>/acknowledge/", work.IncidentAcknowledgeView.as_view(), name="incident-acknowledge"),
    path("open311/v2/services.json", open311.ServiceListView.as_view(), name="open311-services"),
    path("open311/v2/requests.json", open311.RequestListView.as_view(), name="open311-requests"),
    path("open311/v2/requests/<int:pk>.json", open311.RequestDetailView.as_view(), name="open311-request"),
    path("field/", pwa.field_app, name="field-app"),
    path("field/sw.js", pwa.service_worker, name="field-sw"),
    path("field/manifest.webmanifest", pwa.manifest, name="field-manifest"),
    path("field/<path:name>", pwa.field_asset, name="field-asset"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="field_api:schema"), name="docs"),
]
