from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed

        from accounts.lockout import log_login_failure

        # After axes' own receiver (INSTALLED_APPS order), so the request carries its verdict.
        user_login_failed.connect(log_login_failure, dispatch_uid="accounts.log_login_failure")
