"""`doseport users`: the command-line twin of the Users page (accounts/services.py)."""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

import audit
from accounts import lockout, services
from doseport.auth import ROLES, role_of


def _user(name: str) -> Any:
    user = get_user_model().objects.filter(username=name).first()
    if user is None:
        raise CommandError(f"no user {name!r}; create it with `doseport users add`")
    return user


def _prompt_password() -> str:
    if not sys.stdin.isatty():
        raise CommandError("no terminal to ask for the password; use --password or --generate")
    first = getpass.getpass("New password: ")
    if first != getpass.getpass("Again: "):
        raise CommandError("the two passwords differ; nothing changed")
    if not first:
        raise CommandError("empty password; nothing changed")
    return first


class Command(BaseCommand):
    help = "Manage users: add, set-role, list, disable, enable, set-password, unlock."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="create a user with a generated password (printed once)")
        add.add_argument("username")
        add.add_argument("--role", choices=ROLES, default="viewer", help="default: viewer")
        role = sub.add_parser("set-role", help="give an existing user exactly one role")
        role.add_argument("username")
        role.add_argument("role", choices=ROLES)
        sub.add_parser("list", help="list users, their role, state and last login")
        for verb, text in (("disable", "stop a user logging in (the last active admin cannot be)"),
                           ("enable", "let a disabled user log in again")):
            sub.add_parser(verb, help=text).add_argument("username")
        pw = sub.add_parser(
            "set-password", help="set a user's password (default: ask twice on the terminal)"
        )
        pw.add_argument("username")
        given = pw.add_mutually_exclusive_group()
        given.add_argument("--password", help="the new password (default: ask)")
        given.add_argument("--generate", action="store_true",
                           help="generate one and print it once (default: ask)")
        unlock = sub.add_parser(
            "unlock", help="forget failed logins of a user name, or of --address"
        )
        unlock.add_argument("username", nargs="?", help="user name to unlock (default: none)")
        unlock.add_argument("--address", help="IP address to unlock (default: none)")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"].replace("-", "_")
        try:
            getattr(self, f"do_{action}")(options)
        except services.AccountError as exc:
            raise CommandError(str(exc)) from None

    def do_list(self, options: dict[str, Any]) -> None:
        locked = lockout.locked_usernames()
        for user in get_user_model().objects.order_by("username"):
            name = user.get_username()
            state = "disabled" if not user.is_active else "locked" if name in locked else "active"
            last = user.last_login.strftime("%Y-%m-%d %H:%M") if user.last_login else "never"
            self.stdout.write(f"{name:<24} {role_of(user) or '(no role)':<10} {state:<9} {last}")

    def do_add(self, options: dict[str, Any]) -> None:
        name, role = options["username"], options["role"]
        if get_user_model().objects.filter(username=name).exists():
            raise CommandError(f"user {name!r} exists; use `doseport users set-role`")
        created = services.create_user(name, role)
        audit.record("user.add", created.user, detail={"role": role})
        self.stdout.write(f"created {name} ({role}) with password {created.password}")

    def do_set_role(self, options: dict[str, Any]) -> None:
        user = _user(options["username"])
        before, role = role_of(user), options["role"]
        services.change_role(user, role)
        audit.record("user.role", user, detail={"role": [before, role]})
        self.stdout.write(f"{user.get_username()} is now {role}")

    def do_disable(self, options: dict[str, Any]) -> None:
        user = _user(options["username"])
        services.disable(user)
        audit.record("user.disable", user)
        self.stdout.write(f"{user.get_username()} is disabled")

    def do_enable(self, options: dict[str, Any]) -> None:
        user = _user(options["username"])
        services.enable(user)
        audit.record("user.enable", user)
        self.stdout.write(f"{user.get_username()} is enabled")

    def do_set_password(self, options: dict[str, Any]) -> None:
        user = _user(options["username"])
        given = None if options["generate"] else options["password"] or _prompt_password()
        generated = services.set_password(user, given)
        audit.record("user.password", user, detail={"by": "command"})
        if generated:
            self.stdout.write(f"new password for {user.get_username()}: {generated}")
        else:
            self.stdout.write(f"password of {user.get_username()} changed")

    def do_unlock(self, options: dict[str, Any]) -> None:
        name, address = options["username"], options["address"]
        if not name and not address:
            raise CommandError("name a user, or an address with --address")
        if name:
            user = _user(name)
            count = lockout.unlock_user(name)
            audit.record("user.unlock", user, detail={"attempts_cleared": count})
            self.stdout.write(f"{name} unlocked ({count} failed-login record(s) cleared)")
        if address:
            count = lockout.unlock_address(address)
            audit.record("user.unlock", f"address {address}", detail={"attempts_cleared": count})
            self.stdout.write(f"{address} unlocked ({count} failed-login record(s) cleared)")
