from django.apps import AppConfig


class DoseConfig(AppConfig):
    name = "dose"

    def ready(self) -> None:
        from dose import summary

        summary.connect_signals()
