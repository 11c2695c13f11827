import psycopg2
from django.http import HttpResponse
from django.urls import path


def index(request):
    # psycopg2 was compiled in the build stage; importing it proves libpq is in the runtime image.
    return HttpResponse(f"django-heroku app, psycopg2 {psycopg2.__version__.split()[0]}", content_type="text/plain")


urlpatterns = [path("", index)]
