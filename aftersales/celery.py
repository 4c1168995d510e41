"""The Celery application. Settings come from Django settings under the CELERY_ namespace, and those
from the environment (CELERY_BROKER_URL: redis://... or amqp://...; without it tasks run in-process).

`celery -A aftersales worker` finds this module by name; `aftersales worker` starts the same worker
with beat embedded. Tasks are found in each installed app's `tasks` module.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aftersales.settings")

app = Celery("aftersales")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
