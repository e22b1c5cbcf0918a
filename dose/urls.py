from django.urls import URLPattern

app_name = "dose"
urlpatterns: list[URLPattern] = []
