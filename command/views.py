"""The landing page and the health check."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from command.eventlog import latest_seq
from command.layers import layers_for_user


def home(request: HttpRequest) -> HttpResponse:
    grants = layers_for_user(request.user)
    return render(request, "command/home.html", {"layers": [g.layer for g in grants.values()]})


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT postgis_lib_version()")
        row = cursor.fetchone()
    return JsonResponse({"ok": True, "postgis": row[0] if row else None, "latest_seq": latest_seq()})
