"""Settings as a 2018 Heroku tutorial wrote them: django_heroku.settings(locals()) at the end."""
import os

import django_heroku

BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET_KEY = os.environ.get("SECRET_KEY", "not-secret-test-only")
DEBUG = False
INSTALLED_APPS = ["django.contrib.staticfiles"]
MIDDLEWARE = []
ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"
STATIC_URL = "/static/"

django_heroku.settings(locals())
