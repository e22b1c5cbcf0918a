from django.urls import path

from dose import export_views, views

app_name = "dose"
urlpatterns = [
    path("", views.study_list, name="list"),
    path("<int:pk>/", views.study_detail, name="study"),
    path("export/", export_views.export, name="export"),
    path("export/jobs/<int:pk>/", export_views.export_job, name="export_job"),
    path("export/jobs/<int:pk>/status/", export_views.export_job_status, name="export_status"),
    path("export/jobs/<int:pk>/download/", export_views.export_download,
         name="export_download"),
]
