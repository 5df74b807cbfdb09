"""Routes of the resident services (issue #16): the anonymous supervision tips under /tips/
(their access-log lines carry no address: command/asgi.py), the committee's pages."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from field_api.residents import alarms, notices, points, requests, tips

app_name = "residents"

urlpatterns: list[URLPattern | URLResolver] = [
    path("tips/", tips.tip_new, name="tip-new"),
    path("tips/status/", tips.tip_status, name="tip-status"),
    path("supervision/tips/", tips.committee_list, name="committee-tips"),
    path("supervision/tips/<int:pk>/", tips.committee_tip, name="committee-tip"),
    path("api/v1/alarms/webhook/", alarms.alarm_webhook, name="alarm-webhook"),
    path("api/v1/incidents/<int:pk>/alarms/", alarms.IncidentAlarmsView.as_view(), name="incident-alarms"),
    path("resident/", requests.resident_home, name="resident-home"),
    path("resident/code/", requests.resident_code, name="resident-code"),
    path("resident/login/", requests.resident_login, name="resident-login"),
    path("resident/logout/", requests.resident_logout, name="resident-logout"),
    path("resident/requests/<int:pk>/", requests.resident_request, name="resident-request"),
    path("resident/requests/<int:pk>/cancel/", requests.resident_request_cancel, name="resident-request-cancel"),
    path("resident/notices/<int:pk>/", notices.resident_notice, name="resident-notice"),
    path("resident/notices/<int:pk>/photos/<int:photo_id>/", notices.notice_photo, name="notice-photo"),
    path(
        "resident/notices/<int:pk>/photos/<int:photo_id>/thumbnail/",
        notices.notice_photo,
        {"thumbnail": True},
        name="notice-photo-thumbnail",
    ),
    path("api/v1/notices/", notices.NoticeListView.as_view(), name="notices"),
    path("api/v1/notices/<int:pk>/reads/", notices.NoticeReadsView.as_view(), name="notice-reads"),
    path("volunteers/leaderboard/", points.leaderboard, name="leaderboard"),
    path("field/card/", points.my_card, name="volunteer-card"),
    path("field/checkin/", points.check_in, name="activity-checkin"),
    path("field/activities/<int:pk>/qr.svg", points.activity_qr, name="activity-qr"),
    path("api/v1/activities/", points.ActivityListView.as_view(), name="activities"),
    path("field/requests/", requests.field_pool, name="field-requests"),
    path("field/requests/<int:pk>/take/", requests.field_take, name="field-take"),
    path("field/requests/<int:pk>/resolve/", requests.field_resolve, name="field-resolve"),
    path("desk/requests/", requests.desk_requests, name="desk-requests"),
    path("api/v1/requests/", requests.RequestListView.as_view(), name="requests"),
    path("api/v1/requests/<int:pk>/triage/", requests.RequestTriageView.as_view(), name="request-triage"),
    path("api/v1/requests/<int:pk>/publish/", requests.RequestPublishView.as_view(), name="request-publish"),
    path("api/v1/requests/<int:pk>/take/", requests.RequestTakeView.as_view(), name="request-take"),
    path("api/v1/requests/<int:pk>/cancel/", requests.RequestCancelView.as_view(), name="request-cancel"),
    path("api/v1/requests/<int:pk>/resolve/", requests.RequestResolveView.as_view(), name="request-resolve"),
]
