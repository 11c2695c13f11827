"""Settings for the Qoddi Django sample, configured Heroku style.

Everything that differs between deployments comes from environment variables
(the platform's "config vars"); nothing secret is written in this file.

The build runs `manage.py collectstatic` before any database exists and
possibly with no config vars at all, so importing this module must never
require an environment variable or a database connection.
"""
import os
from pathlib import Path

import dj_database_url
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent


def env_list(name, default=""):
    """A comma separated environment variable as a list, blanks dropped."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# Off unless DJANGO_DEBUG=1 is set explicitly.
DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"

# Set SECRET_KEY as a config var for any real app. Without it we fall back to
# a key generated at import time. That is acceptable for this sample only
# because it uses no sessions, logins or signed cookies: a generated key
# differs between gunicorn workers and changes at every restart, which would
# log users out and invalidate signed data in an app that had any.
SECRET_KEY = os.environ.get("SECRET_KEY") or get_random_secret_key()

# Comma separated, e.g. "myapp.example.com,myapp.qoddiapp.com". The default
# "*" accepts any Host header so the sample works on whatever domain it gets;
# set ALLOWED_HOSTS to your real domains in production. The platform's health
# check (/healthz) is answered before host validation, so it keeps working
# when this list is restricted.
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "*")

# Needed for form posts over HTTPS on Django 4+, e.g. "https://myapp.example.com".
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# The platform's router terminates TLS and forwards plain HTTP with
# X-Forwarded-Proto; trust it so request.is_secure() tells the truth.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    # Let `runserver` serve static files through WhiteNoise too, as in production.
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "counter",
]

MIDDLEWARE = [
    # First, so the health check is answered without host validation or a database.
    "counter.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Right after SecurityMiddleware, as WhiteNoise's documentation asks.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "qoddisample.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
            ],
        },
    },
]

WSGI_APPLICATION = "qoddisample.wsgi.application"

# DATABASE_URL is set by attaching a database, e.g.
# postgres://user:password@internal-name:5432/dbname
# Without it we fall back to SQLite in /tmp. The container's disk is
# ephemeral: that file vanishes at every restart and deploy (at least daily),
# and the release phase runs `migrate` in its own container, so its tables
# never reach the web process's SQLite file. Fine for a quick look, useless
# for keeping data: attach a real database.
DATABASES = {
    "default": dj_database_url.config(
        default="sqlite:////tmp/db.sqlite3",
        conn_max_age=600,
        conn_health_checks=True,
    ),
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# collectstatic (run by the build) gathers files here; WhiteNoise serves them
# from gunicorn with hashed names, far-future cache headers and gzip/brotli.
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
    },
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage",
    },
}

# Log to the console: the platform collects stdout/stderr, and files written
# to the ephemeral disk would be lost at the next restart.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "simple": {"format": "{levelname} {name}: {message}", "style": "{"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "simple"},
    },
    "root": {
        "handlers": ["console"],
        "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO"),
    },
}
