import logging
import os
import socket

from django.db import DatabaseError, connection
from django.http import HttpResponse
from django.shortcuts import render

from counter.models import Visit

logger = logging.getLogger(__name__)

# Served by /version when APP_VERSION is not set; change it to see a code-only redeploy.
APP_VERSION_DEFAULT = "1"


def index(request):
    """Record a visit and show where and against what it was served."""
    context = {
        "hostname": socket.gethostname(),
        "release": os.environ.get("QODDI_RELEASE", ""),
        "vendor": connection.vendor,
        "version": os.environ.get("APP_VERSION", APP_VERSION_DEFAULT),
    }
    try:
        Visit.objects.create()
        context["count"] = Visit.objects.count()
    except DatabaseError as exc:
        # Typically: the tables do not exist because `migrate` has not run
        # against this database (e.g. the SQLite fallback, which the release
        # phase's container cannot share with this one).
        logger.error("Cannot record the visit: %s", exc)
        context["db_error"] = str(exc)
        return render(request, "counter/index.html", context, status=503)
    return render(request, "counter/index.html", context)


def healthz(request):
    """Liveness for the platform: no database, no templates."""
    return HttpResponse("ok", content_type="text/plain")


def version(request):
    return HttpResponse(
        os.environ.get("APP_VERSION", APP_VERSION_DEFAULT),
        content_type="text/plain",
    )
