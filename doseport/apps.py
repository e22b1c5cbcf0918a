from django.apps import AppConfig


class DoseportConfig(AppConfig):
    name = "doseport"
    verbose_name = "Doseport"

    def ready(self) -> None:
        from doseport import checks  # noqa: F401 (registers the system checks)
