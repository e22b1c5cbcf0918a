from django.urls import path

from imports import views

app_name = "imports"
urlpatterns = [
    path("", views.import_list, name="list"),
    path("<int:pk>/", views.record_detail, name="record"),
    path("<int:pk>/retry/", views.retry, name="retry"),
]
