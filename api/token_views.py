"""/api/tokens/: a user's own API tokens (create: the key is shown once; revoke)."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

import audit
from api import tokens
from api.forms import TokenForm
from api.models import ApiToken
from doseport.auth import VIEWER, role_required


def _mine(request: HttpRequest) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user_id=int(request.user.pk or 0))


@require_http_methods(["GET", "POST"])
@role_required(VIEWER)
def token_list(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        created = tokens.create(request.user, form.cleaned_data["name"])
        audit.record("token.add", f"API token {created.token.prefix}", request=request,
                     detail={"name": created.token.name})
        new_key, form = created.key, TokenForm()
    rows = _mine(request)
    response = render(request, "api/tokens.html", {"form": form, "tokens": rows, "key": new_key})
    add_never_cache_headers(response)  # the page may hold a key shown once
    return response


@require_POST
@role_required(VIEWER)
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(_mine(request), pk=pk)
    token.revoke()
    audit.record("token.revoke", f"API token {token.prefix}", request=request)
    messages.success(request, f"Revoked the token {token.prefix}…; scripts using it now get 401.")
    return redirect("api:tokens")
