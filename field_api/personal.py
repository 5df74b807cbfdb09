"""One record of any layer over REST, as the one policy lets the viewer see it, and the step that
unmasks its personal data: ``POST .../unmask/`` with a stated purpose, written to the access log
(who, role, what, when, purpose, request id) before the answer leaves.

A layer the viewer may not see, an id outside their grant (another grid cell) and an id that
does not exist answer the same 404."""

from __future__ import annotations

import json
from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from command.access import PURPOSE_MAX_CHARS, PURPOSE_MIN_CHARS, PurposeRefused, purpose_stated
from command.layer_queries import FeatureQuery, layer_features
from command.layers import LayerGrant, layer_access_log, layers_for_user, may_unmask
from field_api.serializers import ErrorSerializer, StrictInputSerializer
from field_api.throttles import ReadThrottle
from field_api.views import errors


def purpose_param(request: Request) -> str:
    """``?purpose=`` of a list or panel: "" when none is stated (the answer stays masked), else
    the stated purpose (checked by command.access.purpose_stated: 400 for a bad one, 403 for a
    role that may not unmask)."""
    try:
        return purpose_stated(request.user, request.query_params.get("purpose"))
    except PurposeRefused as refused:
        if refused.status == 403:
            raise PermissionDenied(refused.reason) from None
        raise serializers.ValidationError({"purpose": [refused.reason]}) from None


PURPOSE_PARAMETER = OpenApiParameter(
    "purpose",
    str,
    description="Why you need to see the personal data unmasked (written to the access log); without it, masked.",
)


def _feature(grant: LayerGrant, feature_id: int) -> dict[str, Any]:
    pk = feature_id
    if pk < 0 or pk > 2**63 - 1:
        raise NotFound(_("No such record."))
    page = layer_features(grant, FeatureQuery(feature_id=pk, limit=1), with_ids=True)
    features = json.loads(page.geojson)["features"]
    if not features:
        raise NotFound(_("No such record."))
    feature: dict[str, Any] = features[0]
    return feature


def _grant(request: Request, layer: str, *, purpose: str = "") -> LayerGrant:
    grant = layers_for_user(request.user, purpose=purpose).get(layer)
    if grant is None:
        raise NotFound(_("No such record."))  # as for a missing one: a layer name reveals nothing
    return grant


class UnmaskInputSerializer(StrictInputSerializer):
    purpose = serializers.CharField(
        min_length=PURPOSE_MIN_CHARS,
        max_length=PURPOSE_MAX_CHARS,
        help_text="Why you need to see this person's data (written to the access log).",
        error_messages={
            "required": "State the purpose of seeing this person's data (written to the access log).",
            "blank": "State the purpose of seeing this person's data (written to the access log).",
        },
    )

    def validate_purpose(self, value: str) -> str:
        value = value.strip()
        if len(value) < PURPOSE_MIN_CHARS:
            raise serializers.ValidationError(_("State the purpose in a few words (written to the access log)."))
        return value


FEATURE = inline_serializer(
    "LayerFeature",
    {
        "type": serializers.CharField(),
        "id": serializers.IntegerField(),
        "geometry": serializers.JSONField(),
        "properties": serializers.DictField(),
    },
)


class LayerFeatureView(APIView):
    throttle_classes = [ReadThrottle]

    @extend_schema(
        operation_id="layer_feature_get",
        responses={200: FEATURE, 404: ErrorSerializer, **errors()},
        description="One record of a layer as your grants let you see it: personal data masked "
        "(张*明, 138****5678) or left out, by your role.",
    )
    def get(self, request: Request, layer: str, feature_id: int) -> Response:
        return Response(_feature(_grant(request, layer), feature_id))


class LayerFeatureUnmaskView(APIView):
    throttle_classes = [ReadThrottle]

    @extend_schema(
        operation_id="layer_feature_unmask",
        request=UnmaskInputSerializer,
        responses={200: FEATURE, 404: ErrorSerializer, **errors(400)},
        description="The record with its personal data unmasked. Needs the personal-data permission "
        "and a stated purpose; every unmask is written to the access log (who, role, what, when, "
        "purpose, request id).",
    )
    def post(self, request: Request, layer: str, feature_id: int) -> Response:
        masked = _grant(request, layer)
        # the record must exist for this viewer before anything else is said about it
        _feature(masked, feature_id)
        if not masked.layer.sensitive_fields:
            raise serializers.ValidationError({"layer": [_("This layer holds no personal data: nothing to unmask.")]})
        if not may_unmask(request.user):
            raise PermissionDenied(_("Your role may not unmask personal data."))
        data = UnmaskInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        purpose: str = data.validated_data["purpose"]
        grant = _grant(request, layer, purpose=purpose)
        feature = _feature(grant, feature_id)
        layer_access_log(user=request.user, channel="unmask", grant=grant, object_ids=[feature["id"]])
        return Response(feature, headers={"Cache-Control": "private, no-store"})
