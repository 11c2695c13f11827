import platform
import sys

import django
from django.http import HttpResponse
from django.urls import path


def version(request):
    """Which interpreter answers: what the test checks against the app's requested version."""
    return HttpResponse(f"python={platform.python_version()} executable={sys.executable} "
                        f"django={django.get_version()} secure={request.is_secure()}\n", content_type="text/plain")


urlpatterns = [path("", version)]
