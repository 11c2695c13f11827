"""A small Django project whose settings need a config var at build (collectstatic) and at run."""
import os
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
# The secret the test rotates: collectstatic must fail without it, so a build that does not pass the
# app's config vars to its hooks is seen. Only its presence is checked here, never written anywhere.
ITEST_SECRET = os.environ.get("ITEST_SECRET", "")
if "collectstatic" in sys.argv and not ITEST_SECRET:
    raise ImproperlyConfigured("ITEST_SECRET is not set during collectstatic")
SECRET_KEY = "not-a-secret-only-for-this-test"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.staticfiles"]
ROOT_URLCONF = "proj.urls"
WSGI_APPLICATION = "proj.wsgi.application"
DATABASES = {}
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
