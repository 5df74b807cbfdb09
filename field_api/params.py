"""Query parameters of the REST lists, checked once for every list (the registry's, Open311's):
a comma-separated list, a whole number in a range, and a page (``limit``/``offset``) of a
queryset. A bad value is a 400 naming the parameter, with a reason a person can act on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.request import Request

T = TypeVar("T")
MAX_LIST_ITEMS = 50


@overload
def csv_param(request: Request, name: str) -> list[str]: ...


@overload
def csv_param(request: Request, name: str, convert: Callable[[str], T], *, reason: str = "") -> list[T]: ...


def csv_param(request: Request, name: str, convert: Callable[[str], Any] = str, *, reason: str = "") -> list[Any]:
    """``?name=a,b,c`` as a list (at most MAX_LIST_ITEMS), each item through ``convert``; an item
    it refuses (ValueError) is a 400 with ``reason``."""
    raw = request.query_params.get(name, "")
    try:
        return [convert(v.strip()) for v in raw.split(",") if v.strip()][:MAX_LIST_ITEMS]
    except ValueError:
        raise serializers.ValidationError({name: [reason or _("A comma-separated list.")]}) from None


def int_param(request: Request, name: str, default: int, *, low: int = 0, high: int = 10**9) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise serializers.ValidationError({name: [_("A whole number.")]}) from None
    if not low <= value <= high:
        raise serializers.ValidationError({name: [_("Between %(low)s and %(high)s.") % {"low": low, "high": high}]})
    return value


def page_of(request: Request, qs: QuerySet[Any], *, default: int, high: int) -> list[Any]:
    """The page ``?limit=`` (``default``, at most ``high``) from ``?offset=`` of an ordered queryset."""
    limit = int_param(request, "limit", default, low=1, high=high)
    offset = int_param(request, "offset", 0)
    return list(qs[offset : offset + limit])


PAGE_PARAMETERS = [
    OpenApiParameter("limit", int, description="How many (a page)."),
    OpenApiParameter("offset", int, description="From which (0: the first)."),
]
