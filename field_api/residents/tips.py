"""The anonymous supervision-tip pages and the committee's pages.

Anonymous pages take no login and keep nothing of the sender: the service gets the topic and
text only; the receipt code travels in POST bodies, never in a URL (URLs end up in logs); the
pages load no other asset (inline CSS), so the access log holds no other line of the visit
(command/asgi.py drops the address from /tips/ lines); the response is never cached.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from command.models import SupervisionTip
from command.services.tips import tip_for_receipt, tip_get_for_committee, tip_set_status, tip_submit, tips_for_committee


def _errors(exc: ValidationError) -> dict[str, str]:
    return {field: " ".join(str(m) for m in messages) for field, messages in exc.message_dict.items()}


@never_cache
@require_http_methods(["GET", "POST"])
def tip_new(request: HttpRequest) -> HttpResponse:
    context = {"topics": SupervisionTip.Topic.choices, "errors": {}, "topic": "", "body": ""}
    if request.method == "POST":
        topic, body = request.POST.get("topic", ""), request.POST.get("body", "")
        try:
            receipt = tip_submit(topic=topic, body=body)
        except ValidationError as exc:
            context.update(errors=_errors(exc), topic=topic, body=body)
            return render(request, "residents/tip_new.html", context, status=400)
        return render(request, "residents/tip_receipt.html", {"code": receipt.code}, status=201)
    return render(request, "residents/tip_new.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
def tip_status(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, "residents/tip_status.html", {})
    code = request.POST.get("code", "")
    tip = tip_for_receipt(code)
    if tip is None:
        return render(request, "residents/tip_status.html", {"not_found": True}, status=404)
    return render(request, "residents/tip_status.html", {"tip": tip})


def _committee_only(request: HttpRequest) -> None:
    try:
        tips_for_committee(request.user)
    except PermissionDenied:
        raise Http404 from None  # the pages of the committee are no one else's business


@login_required
@never_cache
def committee_list(request: HttpRequest) -> HttpResponse:
    _committee_only(request)
    return render(request, "residents/committee_tips.html", {"tips": tips_for_committee(request.user)[:500]})


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def committee_tip(request: HttpRequest, pk: int) -> HttpResponse:
    _committee_only(request)
    tip = tip_get_for_committee(request.user, pk)
    if tip is None:
        raise Http404
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            tip_set_status(
                actor=request.user,
                tip_id=tip.pk,
                status=request.POST.get("status", ""),
                reply=request.POST.get("reply", ""),
            )
        except ValidationError as exc:
            errors = _errors(exc)
        else:
            return redirect("residents:committee-tip", pk=tip.pk)
    return render(
        request,
        "residents/committee_tip.html",
        {"tip": tip, "statuses": SupervisionTip.Status.choices, "errors": errors},
        status=400 if errors else 200,
    )
