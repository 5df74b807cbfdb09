"""Routes of the field API (versioned under /api/v1/), its schema and docs, Open311 and /field/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from field_api import views

app_name = "field_api"

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/v1/auth/token/", views.TokenView.as_view(), name="token"),
    path("api/v1/categories/", views.CategoryListView.as_view(), name="categories"),
    path("api/v1/reports/", views.ReportView.as_view(), name="reports"),
    path("api/v1/photos/<int:pk>/", views.PhotoView.as_view(), name="photo"),
    path("api/v1/photos/<int:pk>/thumbnail/", views.PhotoThumbnailView.as_view(), name="photo-thumbnail"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="field_api:schema"), name="docs"),
]
