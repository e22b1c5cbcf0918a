from django.contrib.auth import views as auth_views
from django.urls import include, path

from doseport import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("accounts.urls")),  # /account/password/, /users/
    path("config/", include("nodes.urls")),
    path("store/", include("store.urls")),
    path("imports/", include("imports.urls")),
    path("studies/", include("dose.urls")),
    path("qr/", include("qr.urls")),
    path("audit/", include("audit.urls")),
    path("api/", include("api.urls")),
    path("alerts/", include("alerts.urls")),
    path("insight/", include("insight.urls")),
    path("metrics", include("metrics.urls")),
]
