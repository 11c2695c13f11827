"""Settings as a 2018 Heroku tutorial wrote them: startproject's, then django_heroku.settings(locals())."""
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
# startproject's default; django_heroku replaces it when DATABASE_URL is set.
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.path.join(BASE_DIR, "db.sqlite3")}}

django_heroku.settings(locals())
