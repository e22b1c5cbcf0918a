from django.urls import path

from dose import views

app_name = "dose"
urlpatterns = [
    path("", views.study_list, name="list"),
    path("<int:pk>/", views.study_detail, name="study"),
]
