from __future__ import annotations

from django.http import HttpRequest

from alerts.models import Alert


def open_alerts(request: HttpRequest) -> dict[str, object]:
    """The header's count of alerts nobody has acknowledged yet (one COUNT per page).

    The header shows it to users with a role (doseport.auth.roles_context gives `role`), so
    this does not look the role up a second time."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"open_alerts": Alert.objects.filter(acknowledged_at__isnull=True).count()}
