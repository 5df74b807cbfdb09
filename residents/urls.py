"""Routes of the resident services (issue #16): the anonymous supervision tips under /tips/
(their access-log lines carry no address: command/asgi.py), the committee's pages."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from residents import alarms, tips

app_name = "residents"

urlpatterns: list[URLPattern | URLResolver] = [
    path("tips/", tips.tip_new, name="tip-new"),
    path("tips/status/", tips.tip_status, name="tip-status"),
    path("supervision/tips/", tips.committee_list, name="committee-tips"),
    path("supervision/tips/<int:pk>/", tips.committee_tip, name="committee-tip"),
    path("api/v1/alarms/webhook/", alarms.alarm_webhook, name="alarm-webhook"),
    path("api/v1/incidents/<int:pk>/alarms/", alarms.IncidentAlarmsView.as_view(), name="incident-alarms"),
]
