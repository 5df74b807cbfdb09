"""Village notices: residents read them on the resident page; operators publish them and read
the counts per grid over REST (``/api/v1/notices/``)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from command.models import Notice
from command.services.notices import (
    PUBLISH_PERMISSION,
    RESIDENT_PERMISSION,
    notice_photo_for_user,
    notice_publish,
    notice_read,
    notice_read_counts,
)
from field_api.serializers import StrictInputSerializer
from field_api.views import photo_file_response


@never_cache
def resident_notice(request: HttpRequest, pk: int) -> HttpResponse:
    if not request.user.is_authenticated or not request.user.has_perm(RESIDENT_PERMISSION):
        raise Http404
    try:
        notice = notice_read(user=request.user, notice_id=pk)
    except Notice.DoesNotExist:
        raise Http404 from None  # a notice for another grid answers like a missing one
    return render(request, "residents/resident_notice.html", {"notice": notice, "photos": notice.photos.all()})


def notice_photo(request: HttpRequest, pk: int, photo_id: int, thumbnail: bool = False) -> FileResponse:
    """An image of a notice (or its thumbnail), for whoever may read the notice; 404 otherwise."""
    photo = notice_photo_for_user(request.user, notice_id=pk, photo_id=photo_id)
    return photo_file_response(photo, thumbnail=thumbnail)


class NoticeIn(StrictInputSerializer):
    title = serializers.CharField(max_length=100)
    body = serializers.CharField(max_length=20000)
    target = serializers.CharField(required=False, allow_blank=True, default="", max_length=32)
    photos = serializers.ListField(
        child=serializers.FileField(), required=False, help_text="images (multipart): JPEG, PNG or WebP"
    )


class NoticeListView(APIView):
    @extend_schema(
        request=NoticeIn,
        responses={
            201: inline_serializer(
                "NoticeOut",
                {
                    "id": serializers.IntegerField(),
                    "title": serializers.CharField(),
                    "target": serializers.CharField(allow_null=True),
                    "published_at": serializers.DateTimeField(),
                    "photos": serializers.IntegerField(help_text="images stored"),
                },
            )
        },
    )
    def post(self, request: Request) -> Response:
        data = NoticeIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        notice = notice_publish(
            actor=request.user,
            title=v["title"],
            body=v["body"],
            target_code=v["target"],
            photos=request.FILES.getlist("photos"),
        )
        return Response(
            {
                "id": notice.pk,
                "title": notice.title,
                "target": v["target"] or None,
                "published_at": notice.published_at,
                "photos": notice.photos.count(),
            },
            status=status.HTTP_201_CREATED,
        )


class NoticeReadsView(APIView):
    @extend_schema(
        responses=inline_serializer(
            "NoticeReads",
            {
                "id": serializers.IntegerField(),
                "reads_by_grid": serializers.DictField(child=serializers.IntegerField()),
                "reads": serializers.IntegerField(),
            },
        )
    )
    def get(self, request: Request, pk: int) -> Response:
        if not request.user.has_perm(PUBLISH_PERMISSION):
            raise PermissionDenied()
        if not Notice.objects.filter(pk=pk).exists():
            raise Http404
        counts = notice_read_counts(pk)
        return Response({"id": pk, "reads_by_grid": counts, "reads": sum(counts.values())})
