import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aftersales.settings")
django.setup(set_prefix=False)

from aftersales.core.handlers import AftersalesWSGIHandler  # noqa: E402 (needs the apps loaded)

application = AftersalesWSGIHandler()
