"""Volunteer service record pages: the leaderboard, a volunteer's own card with a QR code, the
activity check-in a QR code opens, and the activity's QR code for its organiser."""

from __future__ import annotations

from datetime import datetime

import segno
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from command.models import Activity, Worker
from command.services.points import CheckInRefused, activity_check_in, activity_create, points_for_year, volunteer_stars
from field_api.serializers import StrictInputSerializer

FIELD_PERMISSION = "command.use_field_app"


def _svg(data: str) -> str:
    return str(segno.make(data, error="m").svg_inline(scale=5, dark="#1b2533"))


def _year(request: HttpRequest) -> int:
    try:
        return int(request.GET.get("year", ""))
    except ValueError:
        return timezone.now().year


def _field_user(request: HttpRequest) -> None:
    if not (request.user.has_perm(FIELD_PERMISSION) or request.user.has_perm("command.dispatch_incident")):
        raise Http404


@login_required
def leaderboard(request: HttpRequest) -> HttpResponse:
    _field_user(request)
    year = _year(request)
    records = points_for_year(year)[:100]
    return render(request, "residents/leaderboard.html", {"year": year, "records": records})


@login_required
def my_card(request: HttpRequest) -> HttpResponse:
    worker = Worker.objects.filter(user_id=int(request.user.pk or 0)).select_related("team").first()
    if worker is None or not request.user.has_perm(FIELD_PERMISSION):
        raise Http404
    year = _year(request)
    mine = points_for_year(year, worker_ids=[worker.pk])
    points = mine[0].points if mine else 0
    record = mine[0] if mine else None
    card_url = request.build_absolute_uri(f"/volunteers/leaderboard/?year={year}#w{worker.pk}")
    return render(
        request,
        "residents/card.html",
        {
            "worker": worker,
            "year": year,
            "points": points,
            "stars": volunteer_stars(points),
            "record": record,
            "qr": _svg(f"GC-VOLUNTEER:{worker.pk}:{year}:{points} {card_url}"),
        },
    )


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def check_in(request: HttpRequest) -> HttpResponse:
    worker = Worker.objects.filter(user_id=int(request.user.pk or 0)).first()
    if worker is None or not request.user.has_perm(FIELD_PERMISSION):
        raise Http404
    token = request.POST.get("t") or request.GET.get("t", "")
    activity = Activity.objects.filter(token=token[:32]).first()
    if activity is None:
        raise Http404
    if request.method == "GET":
        return render(request, "residents/checkin.html", {"activity": activity, "token": token})
    try:
        activity_check_in(worker=worker, token=token)
    except CheckInRefused as exc:
        return render(request, "residents/checkin.html", {"activity": activity, "error": str(exc)}, status=400)
    return render(request, "residents/checkin.html", {"activity": activity, "done": True})


@login_required
def activity_qr(request: HttpRequest, pk: int) -> HttpResponse:
    if not request.user.has_perm("command.dispatch_incident"):
        raise Http404
    activity = Activity.objects.filter(pk=pk).first()
    if activity is None:
        raise Http404
    url = request.build_absolute_uri(f"/field/checkin/?t={activity.token}")
    return HttpResponse(segno.make(url, error="m").svg_inline(scale=8), content_type="image/svg+xml")


class ActivityIn(StrictInputSerializer):
    title = serializers.CharField(max_length=100)
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()


class ActivityListView(APIView):
    @extend_schema(
        request=ActivityIn,
        responses={
            201: inline_serializer(
                "ActivityOut",
                {
                    "id": serializers.IntegerField(),
                    "title": serializers.CharField(),
                    "starts_at": serializers.DateTimeField(),
                    "check_in_url": serializers.URLField(),
                    "qr": serializers.URLField(),
                },
            )
        },
    )
    def post(self, request: Request) -> Response:
        data = ActivityIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        activity = activity_create(actor=request.user, title=v["title"], starts_at=v["starts_at"], ends_at=v["ends_at"])
        starts: datetime = activity.starts_at
        return Response(
            {
                "id": activity.pk,
                "title": activity.title,
                "starts_at": starts,
                "check_in_url": request.build_absolute_uri(f"/field/checkin/?t={activity.token}"),
                "qr": request.build_absolute_uri(f"/field/activities/{activity.pk}/qr.svg"),
            },
            status=status.HTTP_201_CREATED,
        )
