from django.urls import path

from api import token_views, views

app_name = "api"
urlpatterns = [
    path("studies/", views.studies, name="studies"),
    path("studies/<int:pk>/", views.study, name="study"),
    path("nodes/", views.nodes, name="nodes"),
    path("imports/", views.imports, name="imports"),
    path("qr/jobs/", views.qr_jobs, name="qr_jobs"),
    path("tokens/", token_views.token_list, name="tokens"),
    path("tokens/<int:pk>/revoke/", token_views.token_revoke, name="token_revoke"),
]
