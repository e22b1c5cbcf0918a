"""`doseport tokens add USER | list [USER] | revoke ID|PREFIX`: API tokens (api/tokens.py)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

import audit
from api import tokens
from api.models import ApiToken


def _user(name: str) -> Any:
    user = get_user_model().objects.filter(username=name).first()
    if user is None:
        raise CommandError(f"no user {name!r}; create it with `doseport users add`")
    return user


class Command(BaseCommand):
    help = "Manage read-API tokens: add (prints the key once), list, revoke."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="make a token for USER and print its key once")
        add.add_argument("username")
        add.add_argument("--name", default="", help="what the token is for (default: empty)")
        show = sub.add_parser("list", help="list tokens (default: of every user)")
        show.add_argument("username", nargs="?", help="only this user's tokens (default: all)")
        revoke = sub.add_parser("revoke", help="revoke a token by its id or key prefix")
        revoke.add_argument("token", help="id or prefix, as `tokens list` shows them")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"do_{options['action']}")(options)

    def do_add(self, options: dict[str, Any]) -> None:
        user = _user(options["username"])
        if not user.is_active:
            raise CommandError(f"user {user.get_username()!r} is disabled; enable it first")
        created = tokens.create(user, options["name"])
        audit.record("token.add", f"API token {created.token.prefix}", user=user,
                     detail={"name": created.token.name, "for": user.get_username()})
        self.stdout.write(created.key)
        self.stderr.write(
            f"token {created.token.pk} for {user.get_username()}: the key above is shown only "
            "this once; send it as `Authorization: Token KEY`"
        )

    def do_list(self, options: dict[str, Any]) -> None:
        rows = ApiToken.objects.select_related("user").order_by("user__username", "pk")
        if options["username"]:
            rows = rows.filter(user=_user(options["username"]))
        for t in rows:
            used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
            state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "active"
            self.stdout.write(
                f"{t.pk:<5} {t.prefix:<11} {t.user.get_username():<20} {state:<18} "
                f"used {used:<16} {t.name}"
            )

    def do_revoke(self, options: dict[str, Any]) -> None:
        token = tokens.find(options["token"])
        if token is None:
            raise CommandError(f"no single token {options['token']!r}; see `doseport tokens list`")
        if not token.active:
            raise CommandError(f"token {token.pk} is already revoked")
        token.revoke()
        audit.record("token.revoke", f"API token {token.prefix}",
                     detail={"for": token.user.get_username()})
        self.stdout.write(f"revoked token {token.pk} ({token.prefix}…)")
