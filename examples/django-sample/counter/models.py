from django.db import models


class Visit(models.Model):
    """One request to the home page."""

    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"Visit {self.pk} at {self.created:%Y-%m-%d %H:%M:%S}"
