from counter import views


class HealthCheckMiddleware:
    """Answer the platform's health check before anything else runs.

    Placed first in MIDDLEWARE, so /healthz skips ALLOWED_HOSTS validation
    (the checker may call the container by IP address) and never touches the
    database: a slow or missing database must not get the web process killed.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == "/healthz":
            return views.healthz(request)
        return self.get_response(request)
