from django.urls import path

from store import views

app_name = "store"
urlpatterns = [
    path("nodes/<int:pk>/runtime/", views.runtime, name="runtime"),
    path("nodes/<int:pk>/start/", views.start, name="start"),
    path("nodes/<int:pk>/stop/", views.stop, name="stop"),
]
