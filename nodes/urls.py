from django.urls import path, register_converter

from nodes import views


class KindConverter:
    regex = "store|remote"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(KindConverter, "kind")

app_name = "nodes"
urlpatterns = [
    path("dicom/", views.dicom_config, name="dicom"),
    path("dicom/<kind:kind>/add/", views.node_add, name="add"),
    path("dicom/<kind:kind>/<int:pk>/edit/", views.node_edit, name="edit"),
    path("dicom/<kind:kind>/<int:pk>/delete/", views.node_delete, name="delete"),
    path("dicom/<kind:kind>/<int:pk>/echo/", views.node_echo, name="echo"),
    path("dicom/<kind:kind>/<int:pk>/panel/", views.node_panel, name="panel"),
    path("dicom/remote/<int:pk>/probe/", views.node_probe, name="probe"),
    path("dicom/delete-settings/", views.delete_settings, name="delete_settings"),
]
