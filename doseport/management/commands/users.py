from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from doseport.auth import ROLES, role_of, set_role


class Command(BaseCommand):
    help = "Manage users and their role (viewer, importer, admin)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="create a user with a generated password (printed once)")
        add.add_argument("username")
        add.add_argument("--role", choices=ROLES, default="viewer", help="default: viewer")
        role = sub.add_parser("set-role", help="give an existing user exactly one role")
        role.add_argument("username")
        role.add_argument("role", choices=ROLES)
        sub.add_parser("list", help="list users and their roles")

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model().objects
        action = options["action"]
        if action == "list":
            for user in users.order_by("username"):
                self.stdout.write(f"{user.get_username():<24} {role_of(user) or '(no role)'}")
            return
        name = options["username"]
        if action == "add":
            if users.filter(username=name).exists():
                raise CommandError(f"user {name!r} exists; use `doseport users set-role`")
            password = secrets.token_urlsafe(12)
            user = users.create_user(name, password=password)
            set_role(user, options["role"])
            self.stdout.write(f"created {name} ({options['role']}) with password {password}")
            return
        existing = users.filter(username=name).first()
        if existing is None:
            raise CommandError(f"no user {name!r}; create it with `doseport users add`")
        set_role(existing, options["role"])
        self.stdout.write(f"{name} is now {options['role']}")
