from django.urls import URLPattern

app_name = "qr"
urlpatterns: list[URLPattern] = []
