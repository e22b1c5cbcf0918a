from django.urls import path

from alerts import views

app_name = "alerts"
urlpatterns = [
    path("", views.alert_list, name="list"),
    path("<int:pk>/", views.alert_detail, name="alert"),
    path("<int:pk>/acknowledge/", views.alert_acknowledge, name="acknowledge"),
    path("rules/", views.rule_list, name="rules"),
    path("rules/add/", views.rule_edit, name="rule_add"),
    path("rules/<int:pk>/", views.rule_edit, name="rule_edit"),
    path("rules/<int:pk>/delete/", views.rule_delete, name="rule_delete"),
    path("levels/", views.level_list, name="levels"),
    path("levels/add/", views.level_edit, name="level_add"),
    path("levels/<int:pk>/", views.level_edit, name="level_edit"),
    path("levels/<int:pk>/delete/", views.level_delete, name="level_delete"),
]
