from django.urls import path

from counter import views

urlpatterns = [
    path("", views.index, name="index"),
    path("healthz", views.healthz, name="healthz"),
    path("version", views.version, name="version"),
]
