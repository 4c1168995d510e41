"""aftersales: an open-source after-sales service platform for e-commerce."""

from .celery import app as celery_app

__all__ = ["celery_app"]
