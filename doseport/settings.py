"""Settings, read once from environment variables (docs/configuration.md lists them all)."""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path

from doseport.queue import parse_server_name
from lib.env import (
    ConfigError,
    allowed_hosts,
    default_home,
    env_bool,
    env_int,
    env_list,
    env_path,
    env_secret,
    env_store_ae_title,
    env_str,
    https_origins,
    parse_bind,
    parse_database_url,
)
from lib.format import DAP_UNITS, DEFAULT_DAP_UNIT
from lib.private import IDENTITY_KEY_FILE, SECRET_KEY_FILE
from lib.tls import files_from_env as tls_files_from_env

BASE_DIR = Path(__file__).resolve().parent.parent

# Created (0700) with the keys at the start of each doseport command (lib/private.py), not
# here: importing the settings writes nothing.
HOME = env_path("DOSEPORT_HOME", default_home())  # as lib.env.home_dir()
SPOOL_DIR = HOME / "spool"
QUARANTINE_DIR = HOME / "quarantine"
LOG_DIR = HOME / "logs"

DEBUG = env_bool("DOSEPORT_DEBUG", False)
SECRET_KEY = env_secret("SECRET_KEY", HOME / SECRET_KEY_FILE)
# Key of the HMAC that hashes patient identity (DOSEPORT_PATIENT_IDENTITY=hashed).
IDENTITY_KEY_PATH = HOME / IDENTITY_KEY_FILE
BIND = parse_bind("DOSEPORT_BIND", "127.0.0.1:8000")
ALLOWED_HOSTS = allowed_hosts(BIND.host, env_list("DOSEPORT_ALLOWED_HOSTS"))
CSRF_TRUSTED_ORIGINS = env_list("DOSEPORT_CSRF_TRUSTED_ORIGINS")

# Behind a reverse proxy that terminates HTTPS (deploy/nginx-doseport.conf).
HTTPS = env_bool("DOSEPORT_HTTPS", False)
if HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    CSRF_TRUSTED_ORIGINS = [*CSRF_TRUSTED_ORIGINS, *https_origins(ALLOWED_HOSTS)]
# HSTS preloading is a request to browser makers for a whole public domain, not something a
# hospital host name can take part in.
SILENCED_SYSTEM_CHECKS = ["security.W021"]

# Sessions end after this long without a request (doseport.security.SessionIdleRefresh).
SESSION_IDLE_HOURS = env_int("DOSEPORT_SESSION_IDLE_HOURS", 12, minimum=1, maximum=24 * 30)
SESSION_COOKIE_AGE = SESSION_IDLE_HOURS * 3600

# Site-wide DICOM defaults.
AE_TITLE = env_str("DOSEPORT_AE_TITLE", "DOSEPORT")
# The store node created on the first `doseport run` (doseport/bootstrap.py).
DEFAULT_STORE_AE = env_store_ae_title("DOSEPORT_DEFAULT_STORE_AE", "DOSEPORT")
DEFAULT_STORE_PORT = env_int("DOSEPORT_DEFAULT_STORE_PORT", 11112, minimum=1, maximum=65535)
# Store nodes receive C-STOREs whose SOP class settles the import question through their
# own fast lane (store/acceptor/lane.py); off sends every object through pynetdicom's path.
STORE_FAST_LANE = env_bool("DOSEPORT_STORE_FAST_LANE", True)
# Processes per store node (`doseport stores`); more than one serves parallel
# associations on more than one core.
STORE_PROCESSES = env_int("DOSEPORT_STORE_PROCESSES", 1, minimum=1, maximum=16)
# What one store node process accepts from the network (store/acceptor/limits.py): open
# connections in all and from one address, and the largest object (written as it arrives).
STORE_MAX_CONNECTIONS = env_int("DOSEPORT_STORE_MAX_CONNECTIONS", 40, minimum=1, maximum=1000)
STORE_MAX_CONNECTIONS_PER_PEER = env_int(
    "DOSEPORT_STORE_MAX_CONNECTIONS_PER_PEER", 16, minimum=1, maximum=1000
)
STORE_MAX_OBJECT_BYTES = env_int(
    "DOSEPORT_STORE_MAX_OBJECT_MB", 2048, minimum=1, maximum=64 * 1024
) * 1024 * 1024
# The calling AE title of Doseport's own health check (C-ECHO of its store nodes); a node
# admits it from this host only, whatever its allow-list says.
HEALTH_AE = env_str("DOSEPORT_HEALTH_AE", "DOSEPORT-HC")[:16].strip() or "DOSEPORT-HC"
ECHO_INTERVAL_S = env_int("DOSEPORT_ECHO_INTERVAL", 60, minimum=5, maximum=86400)
# What every AE is built from (lib/aeconfig.py); `doseport store run` options override the
# store values for one node. Timeouts in seconds.
STORE_MAX_PDU = env_int("DOSEPORT_STORE_MAX_PDU", 4 * 1024 * 1024, minimum=4096,
                        maximum=16 * 1024 * 1024)
STORE_ACSE_TIMEOUT = env_int("DOSEPORT_STORE_ACSE_TIMEOUT", 30, minimum=1, maximum=3600)
STORE_DIMSE_TIMEOUT = env_int("DOSEPORT_STORE_DIMSE_TIMEOUT", 60, minimum=1, maximum=3600)
STORE_NETWORK_TIMEOUT = env_int("DOSEPORT_STORE_NETWORK_TIMEOUT", 60, minimum=1, maximum=3600)
STORE_MAX_ASSOCIATIONS = env_int("DOSEPORT_STORE_MAX_ASSOCIATIONS", 20, minimum=1, maximum=1000)
OUTGOING_MAX_PDU = env_int("DOSEPORT_OUTGOING_MAX_PDU", 262_144, minimum=4096,
                           maximum=16 * 1024 * 1024)
# TCP options of every DICOM connection, ours and our nodes' (lib/aeconfig.tune_socket).
TCP_NODELAY = env_bool("DOSEPORT_TCP_NODELAY", True)
TCP_QUICKACK = env_bool("DOSEPORT_TCP_QUICKACK", True)
# DICOM TLS (lib/tls.py): PEM certificate, unencrypted key and CA bundle, checked here so a
# bad file stops start-up with a line naming the variable.
TLS_FILES = tls_files_from_env()
TLS_CHECK_HOSTNAME = env_bool("DOSEPORT_TLS_CHECK_HOSTNAME", True)
# Quarantined objects (failed imports) older than this are deleted by a periodic task.
QUARANTINE_DAYS = env_int("DOSEPORT_QUARANTINE_DAYS", 30, minimum=1, maximum=36500)
# /metrics (metrics/, docs/metrics.md): loopback callers may read it without an API token.
METRICS_LOOPBACK = env_bool("DOSEPORT_METRICS_LOOPBACK", True)
SAMPLES_DIR = env_path("DOSEPORT_SAMPLES", str(BASE_DIR.parent / "shared" / "samples"))
# Patient name, id and birth date from dose objects: none (default), hashed (HMAC-SHA-256
# keyed with IDENTITY_KEY_PATH, lib/identity.py) or plain.
PATIENT_IDENTITY = env_str("DOSEPORT_PATIENT_IDENTITY", "none").strip().lower()
if PATIENT_IDENTITY not in ("none", "hashed", "plain"):
    raise ConfigError(
        "DOSEPORT_PATIENT_IDENTITY must be none, hashed or plain, not " + repr(PATIENT_IDENTITY)
    )
# Unit of DAP on pages (lib/format.py); the export keeps Gy·m².
DAP_UNIT = env_str("DOSEPORT_DAP_UNIT", DEFAULT_DAP_UNIT).strip()
if DAP_UNIT not in DAP_UNITS:
    raise ConfigError(f"DOSEPORT_DAP_UNIT must be one of {', '.join(DAP_UNITS)}, not {DAP_UNIT!r}")

# Alert e-mail (docs/alerts.md) through Django's SMTP backend; no host: alerts are not mailed.
EMAIL_HOST = env_str("DOSEPORT_EMAIL_HOST", "").strip()
EMAIL_PORT = env_int("DOSEPORT_EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("DOSEPORT_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = env_str("DOSEPORT_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = env_bool("DOSEPORT_EMAIL_STARTTLS", False)
EMAIL_USE_SSL = env_bool("DOSEPORT_EMAIL_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ConfigError("DOSEPORT_EMAIL_STARTTLS and DOSEPORT_EMAIL_SSL cannot both be on")
EMAIL_TIMEOUT = env_int("DOSEPORT_EMAIL_TIMEOUT", 20, minimum=1, maximum=600)
DEFAULT_FROM_EMAIL = env_str("DOSEPORT_EMAIL_FROM", "doseport@localhost")
# Address of the pages as people open them, for links in e-mail.
SITE_URL = env_str("DOSEPORT_SITE_URL", "") or f"http://{BIND.host}:{BIND.port}"

# Web exports (docs/export.md): up to this many rows answer at once, more go to the worker,
# whose file is kept this long.
EXPORT_DIRECT_MAX_ROWS = env_int("DOSEPORT_EXPORT_DIRECT_MAX_ROWS", 5000, minimum=0)
EXPORT_KEEP_HOURS = env_int("DOSEPORT_EXPORT_KEEP_HOURS", 24, minimum=1, maximum=24 * 30)

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "huey.contrib.djhuey",
    "doseport",
    "nodes",
    "store",
    "imports",
    "dose",
    "qr",
    "axes",
    "accounts",
    "audit",
    "api",
    "alerts",
    "insight",
    "metrics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "doseport.security.ContentSecurityPolicy",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "doseport.security.SessionIdleRefresh",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # Last: turns a login refused by the lock-out into the login page with the reason.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "doseport.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "doseport.auth.roles_context",
                "alerts.context.open_alerts",
            ],
        },
    }
]
WSGI_APPLICATION = "doseport.wsgi.application"

_database_url = env_str("DATABASE_URL", "")
if _database_url:
    DATABASES = {"default": parse_database_url("DATABASE_URL", _database_url)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(env_path("DOSEPORT_SQLITE", str(HOME / "db.sqlite3"))),
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;"
                ),
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "")
_huey_name = env_str("DOSEPORT_HUEY_NAME", "doseport")
# This server's name: its supervisor runs the store nodes that run on it (StoreNode.runs_on)
# and its worker consumes its own import queue (doseport/queue.py, docs/deploy.md).
SERVER_NAME = parse_server_name(
    "DOSEPORT_SERVER_NAME", env_str("DOSEPORT_SERVER_NAME", "") or socket.gethostname()
)
if REDIS_URL:
    HUEY: dict[str, object] = {
        "huey_class": "huey.RedisHuey",
        "name": _huey_name,
        "url": REDIS_URL,
        "immediate": False,
        "results": True,
        "consumer": {"workers": 2, "worker_type": "thread"},
    }
else:
    HUEY = {
        "huey_class": "doseport.queue.LazySqliteHuey",
        "name": _huey_name,
        "filename": str(HOME / "huey.sqlite3"),
        # SQLite page cache per connection (Huey's default is 8 MB, and every thread of the
        # worker has a connection per queue): with a backlog of tens of thousands of tasks
        # the caches filled and the worker's RSS followed the backlog (docs/PERFORMANCE.md,
        # "Soak"). Taking a task reads a few pages of an index.
        "cache_mb": 1,
        "immediate": False,
        "results": True,
        "consumer": {"workers": 2, "worker_type": "thread"},
    }

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Failed logins (django-axes, docs/accounts.md): counted per user name and per address
# independently; at the limit, logins are refused (before hashing) for the cool-off time.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = env_int("DOSEPORT_LOGIN_FAILURE_LIMIT", 10, minimum=3, maximum=1000)
AXES_COOLOFF_TIME = timedelta(
    minutes=env_int("DOSEPORT_LOGIN_LOCKOUT_MINUTES", 30, minimum=1, maximum=7 * 24 * 60)
)
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.client_address"
AXES_CLIENT_STR_CALLABLE = "accounts.lockout.client_str"
AXES_VERBOSE = False  # its start-up banner would be a second line on every command's stderr
# Reverse proxies whose X-Forwarded-For is believed for the per-address count.
TRUSTED_PROXIES = [
    a.strip() for a in env_str("DOSEPORT_TRUSTED_PROXIES", "").split(",") if a.strip()
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("DOSEPORT_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = HOME / "static"

# Every process logs to the console and appends to LOG_DIR/doseport.log (rotated by size,
# doseport/logfiles.py). Messages are escaped to one line each and identical warnings are
# logged once a minute with a count (doseport/logfilters.py).
LOG_FILE = LOG_DIR / "doseport.log"
LOG_MAX_BYTES = env_int("DOSEPORT_LOG_MAX_BYTES", 10_000_000, minimum=10_000)
LOG_BACKUPS = env_int("DOSEPORT_LOG_BACKUPS", 5, minimum=0, maximum=1000)
_log_filters = ["unreachable_peer", "collapse_repeats"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"()": "doseport.logfilters.OneLineFormatter",
                             "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"unreachable_peer": {"()": "doseport.logfilters.UnreachablePeer"},
                "collapse_repeats": {"()": "doseport.logfilters.CollapseRepeats"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain",
                    "filters": _log_filters},
        "file": {"class": "doseport.logfiles.SharedRotatingFileHandler", "formatter": "plain",
                 "filters": _log_filters, "filename": str(LOG_FILE),
                 "maxBytes": LOG_MAX_BYTES, "backupCount": LOG_BACKUPS},
    },
    "root": {"handlers": ["console", "file"],
             "level": env_str("DOSEPORT_LOG_LEVEL", "INFO").upper()},
    "loggers": {
        "pynetdicom": {"level": "WARNING"},
        # A handler here stops run_huey adding its own (every line would print twice).
        "huey": {"handlers": ["console", "file"], "level": "INFO", "propagate": False},
    },
}
