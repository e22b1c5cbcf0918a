from django.apps import AppConfig


class DoseportConfig(AppConfig):
    name = "doseport"
    verbose_name = "Doseport"
