from django.urls import path

from qr import views

app_name = "qr"
urlpatterns = [
    path("", views.query_page, name="query"),
    path("nodes/", views.node_status, name="node_status"),
    path("nodes/echo/", views.echo_nodes, name="echo_nodes"),
    path("history/", views.history, name="history"),
    path("history/delete/", views.delete, name="delete"),
    path("schedules/", views.schedules, name="schedules"),
    path("schedules/<int:pk>/", views.schedule_toggle, name="schedule_toggle"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/live/", views.live, name="live"),
    path("<int:pk>/retrieve/", views.retrieve, name="retrieve"),
    path("<int:pk>/cancel/", views.cancel, name="cancel"),
    path("<int:pk>/again/", views.again, name="again"),
]
