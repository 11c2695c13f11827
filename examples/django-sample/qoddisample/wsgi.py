"""WSGI entry point: the Procfile runs `gunicorn qoddisample.wsgi`.

gunicorn needs no --bind flag: it reads $PORT (and $WEB_CONCURRENCY for the
number of workers) from the environment the platform provides.
"""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qoddisample.settings")

application = get_wsgi_application()
