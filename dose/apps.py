from django.apps import AppConfig


class DoseConfig(AppConfig):
    name = "dose"
