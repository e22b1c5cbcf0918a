from django.urls import path

from insight import views

app_name = "insight"
urlpatterns = [
    path("", views.index, name="index"),
    path("<slug:slug>/", views.modality_page, name="modality"),
    path("<slug:slug>/<slug:name>.json", views.chart_json, name="chart_json"),
    path("<slug:slug>/<slug:name>.csv", views.chart_csv, name="chart_csv"),
]
