"""URL map: each app owns its own urls module; this file only wires them in."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from command import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("admin/login/", views.admin_login),  # the admin's form, answered 429 when locked (views.py)
    path("admin/", admin.site.urls),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("field_api.residents.urls")),  # before field_api: /field/requests/ is ours, /field/<asset> theirs
    path("", include("field_api.urls")),
    path("", include("maps.urls")),
    path("analysis/", include("command.analysis.urls")),
]
