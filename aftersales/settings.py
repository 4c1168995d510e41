"""Settings for aftersales.

Everything that differs between a laptop, CI and production comes from the environment, so one
file serves all three. The embedded default (no variables set) is SQLite and an in-process task
runner: `make run` needs no external service.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("AFTERSALES_DATA_DIR", BASE_DIR.parent / "var"))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


# A fixed key is only acceptable on the embedded default; production must set its own.
SECRET_KEY = os.environ.get("AFTERSALES_SECRET_KEY", "insecure-development-key-change-me")
DEBUG = _env_bool("AFTERSALES_DEBUG", False)
ALLOWED_HOSTS = [h for h in os.environ.get("AFTERSALES_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Ninja's own copy of Swagger UI, so /api/docs works without reaching a CDN.
    "ninja",
    "aftersales.core",
    "aftersales.stores",
    "aftersales.catalog",
    "aftersales.orders",
    "aftersales.cases",
    "aftersales.policies",
    "aftersales.sla",
    "aftersales.demo",
    "aftersales.console",
    "aftersales.portal",
    "aftersales.notifications",
    "aftersales.logistics",
    "aftersales.warehouse",
    "aftersales.repairs",
    "aftersales.refunds",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's CSS) from the web process itself, so DEBUG can stay off without a proxy.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "aftersales.core.idempotency.IdempotencyMiddleware",
]

ROOT_URLCONF = "aftersales.urls"
WSGI_APPLICATION = "aftersales.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{DATA_DIR / 'aftersales.sqlite3'}"),
        conn_max_age=int(os.environ.get("AFTERSALES_DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server and the worker read while the other writes; the busy timeout turns
    # a brief write collision into a short wait instead of "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    # Django turns psycopg's prepared statements off (prepare_threshold None). Its own cursors bind on the
    # client and are never prepared either way; the few hot paths that bind on the server (opening a
    # case: cases/order_claims.py, core/bulk_writes.insert_together) ask for preparation, so that each
    # connection plans their statements once instead of on every request.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
# The portal's and console's own assets (vendored htmx, one stylesheet, one script) live beside the
# templates; served through the finders so `make run` needs no collectstatic step.
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on every start while `collectstatic` has not run yet
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("AFTERSALES_MEDIA_ROOT", DATA_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/accounts/home/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
# Guest access to one order by a one-time code. Without an SMS or e-mail channel (the embedded
# default) the code is logged and shown on the demo page, so the flow can be tried end to end.
AFTERSALES_GUEST_CODE_TTL_SECONDS = int(os.environ.get("AFTERSALES_GUEST_CODE_TTL_SECONDS", "600"))
AFTERSALES_GUEST_CODE_MAX_ATTEMPTS = 5
AFTERSALES_SHOW_GUEST_CODES = _env_bool(
    "AFTERSALES_SHOW_GUEST_CODES", DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
)

# Uploaded evidence: the size limit is checked by our own validator so the error has a code;
# Django's own limit stays above it so it never answers first with a bare 400.
AFTERSALES_MAX_ATTACHMENT_BYTES = int(os.environ.get("AFTERSALES_MAX_ATTACHMENT_BYTES", str(10 * 1024 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = AFTERSALES_MAX_ATTACHMENT_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# Background work. Without a broker the embedded default runs tasks in-process after commit and
# the `serve` command runs the periodic sweeps on a thread; with a broker, `aftersales worker` does.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# How often the SLA sweep runs. Deadlines are stored on the cases, so this is only how late an automatic
# action may come, never whether it comes: a missed run is caught up by the next one.
AFTERSALES_SLA_SWEEP_SECONDS = int(os.environ.get("AFTERSALES_SLA_SWEEP_SECONDS", "60"))
# Periodic tasks, read by Celery beat (`aftersales worker`) and by the embedded runner alike
# (aftersales/core/scheduler.py, which understands interval schedules only).
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "purge-idempotency-records": {
        "task": "aftersales.core.tasks.purge_idempotency_records",
        "schedule": timedelta(hours=1),
    },
    "sla-sweep": {
        "task": "aftersales.sla.tasks.sweep",
        "schedule": timedelta(seconds=AFTERSALES_SLA_SWEEP_SECONDS),
        # A sweep that waited longer than its interval in the queue is superseded by the next one.
        "options": {"expires": AFTERSALES_SLA_SWEEP_SECONDS},
    },
    # Outbox events whose kick was lost, and deliveries due for a retry or left by a worker that died.
    "notifications-sweep": {
        "task": "aftersales.notifications.tasks.sweep",
        "schedule": timedelta(seconds=int(os.environ.get("AFTERSALES_NOTIFICATIONS_SWEEP_SECONDS", "30"))),
    },
    # Refund attempts left unconfirmed are asked about by their key; the sandbox gateway's callbacks go out.
    "refunds-sweep": {
        "task": "aftersales.refunds.tasks.sweep",
        "schedule": timedelta(seconds=int(os.environ.get("AFTERSALES_REFUNDS_SWEEP_SECONDS", "60"))),
    },
    # Yesterday's ledger against the gateways' bills (a rerun replaces the day's report).
    "refunds-daily-reconciliation": {
        "task": "aftersales.refunds.tasks.daily_reconciliation",
        "schedule": timedelta(hours=24),
    },
    # Does nothing while AFTERSALES_IMAP_HOST is empty.
    "fetch-inbound-mail": {
        "task": "aftersales.notifications.tasks.fetch_mail",
        "schedule": timedelta(seconds=int(os.environ.get("AFTERSALES_IMAP_POLL_SECONDS", "60"))),
    },
}

# E-mail. The embedded default writes each mail to a file under var/mail/ (the demo sends hundreds,
# which would bury the server's own output on the console); production sets an SMTP host.
EMAIL_BACKEND = os.environ.get(
    "AFTERSALES_EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if os.environ.get("AFTERSALES_EMAIL_HOST")
    else "django.core.mail.backends.filebased.EmailBackend",
)
EMAIL_FILE_PATH = DATA_DIR / "mail"
EMAIL_HOST = os.environ.get("AFTERSALES_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("AFTERSALES_EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("AFTERSALES_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("AFTERSALES_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = _env_bool("AFTERSALES_EMAIL_TLS", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("AFTERSALES_FROM_EMAIL", "aftersales <service@aftersales.localhost>")
# Replies come back to the store's service address (or this one) with a +token naming the case.
AFTERSALES_SERVICE_ADDRESS = os.environ.get("AFTERSALES_SERVICE_ADDRESS", "service@aftersales.localhost")
# Links in e-mail and SMS point here.
AFTERSALES_PUBLIC_URL = os.environ.get("AFTERSALES_PUBLIC_URL", "http://127.0.0.1:8000")
# The inbound-mail webhook is refused while this is empty.
AFTERSALES_INBOUND_MAIL_SECRET = os.environ.get("AFTERSALES_INBOUND_MAIL_SECRET", "")
# More than this many mails from one sender within the window is taken for a loop.
AFTERSALES_INBOUND_LOOP_LIMIT = 10
AFTERSALES_INBOUND_LOOP_WINDOW_SECONDS = 600
AFTERSALES_IMAP_HOST = os.environ.get("AFTERSALES_IMAP_HOST", "")
AFTERSALES_IMAP_PORT = int(os.environ.get("AFTERSALES_IMAP_PORT", "993"))
AFTERSALES_IMAP_USER = os.environ.get("AFTERSALES_IMAP_USER", "")
AFTERSALES_IMAP_PASSWORD = os.environ.get("AFTERSALES_IMAP_PASSWORD", "")
AFTERSALES_IMAP_SSL = _env_bool("AFTERSALES_IMAP_SSL", True)
# SMS: "sandbox" keeps messages in memory; "twilio" needs the three credentials below.
AFTERSALES_SMS_PROVIDER = os.environ.get("AFTERSALES_SMS_PROVIDER", "sandbox")
AFTERSALES_TWILIO_ACCOUNT_SID = os.environ.get("AFTERSALES_TWILIO_ACCOUNT_SID", "")
AFTERSALES_TWILIO_AUTH_TOKEN = os.environ.get("AFTERSALES_TWILIO_AUTH_TOKEN", "")
AFTERSALES_TWILIO_FROM = os.environ.get("AFTERSALES_TWILIO_FROM", "")
# Webhooks: a short timeout, so a slow endpoint holds a sender only briefly; threads that send a batch.
AFTERSALES_WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("AFTERSALES_WEBHOOK_TIMEOUT_SECONDS", "5"))
AFTERSALES_DELIVERY_WORKERS = int(os.environ.get("AFTERSALES_DELIVERY_WORKERS", "8"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("AFTERSALES_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
