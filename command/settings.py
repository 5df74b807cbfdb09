"""GridCommand settings: everything that differs between machines comes from the environment.

Every variable is listed in the README ("Settings"). Without ``DATABASE_URL`` / ``REDIS_URL``
the private PostgreSQL and Redis under ``.local/`` (see ``command/localstack.py``) are used.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from command import localstack
from command.analysis.params import hotspot_category_params_parse

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be 1/0, true/false, yes/no or on/off, not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def database_from_url(url: str) -> dict[str, object]:
    """``postgres://user:password@host:port/name?host=/socket/dir&port=5432&sslmode=...``."""
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql", "postgis"}:
        raise ImproperlyConfigured(f"DATABASE_URL must be a postgres:// URL, not {parsed.scheme!r}")
    query = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    host = query.pop("host", None) or unquote(parsed.hostname or "")
    port = query.pop("port", None) or (str(parsed.port) if parsed.port else "")
    return {
        "ENGINE": "django.contrib.gis.db.backends.postgis",
        "NAME": unquote(parsed.path.lstrip("/")) or "gridcommand",
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": host,
        "PORT": port,
        "OPTIONS": dict(query),
    }


DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if DEBUG or env_bool("GRIDCOMMAND_TESTING", False):
        SECRET_KEY = "insecure-development-key-never-use-in-production"  # noqa: S105
    else:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Production has no default secret key; "
            "`make demo` generates one in .local/secret_key, or set DJANGO_DEBUG=1 for development."
        )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# HTTPS hardening; off for the plain-HTTP demo on 127.0.0.1, on for production.
SECURE = env_bool("DJANGO_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = SECURE
SESSION_COOKIE_SECURE = SECURE
CSRF_COOKIE_SECURE = SECURE
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000 if SECURE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE
SECURE_HSTS_PRELOAD = SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DJANGO_BEHIND_PROXY", False) else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "rest_framework",
    "rest_framework.authtoken",
    "rest_framework_gis",
    "drf_spectacular",
    "channels",
    "command",
    "field_api",
    "realtime",
    "maps",
    "field_api.residents",
    "fixtures",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "command.middleware.security_headers",  # request id (access log), Content-Security-Policy
]

ROOT_URLCONF = "command.urls"
ASGI_APPLICATION = "command.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL") or localstack.default_database_url()
_default_db = database_from_url(DATABASE_URL)
# A new connection costs ~11 ms here (SETUP-NOTES): keep them in psycopg's pool. Under ASGI
# every request may run in a new thread, so CONN_MAX_AGE would not reuse them; the pool does.
DB_POOL_MAX = env_int("DB_POOL_MAX", 20)
if DB_POOL_MAX > 0:
    _options = dict(_default_db["OPTIONS"])  # type: ignore[call-overload]
    _options["pool"] = {"min_size": env_int("DB_POOL_MIN", 2), "max_size": DB_POOL_MAX, "timeout": 10}
    _default_db["OPTIONS"] = _options
# PostgreSQL's JIT compiler, off unless DB_JIT=1: PostGIS's function costs push tile queries
# past jit_above_cost, and compiling took 0.4-1.2 s of z12-z13 tiles that run in 0.1-0.2 s.
DB_JIT = env_bool("DB_JIT", False)
if not DB_JIT:
    _options = dict(_default_db["OPTIONS"])  # type: ignore[call-overload]
    _options["options"] = f"{_options.get('options', '')} -c jit=off".strip()
    _default_db["OPTIONS"] = _options
# The lean ASGI paths in front of Django (field_api/fast.py, maps/fast.py); 0 sends every
# request through Django (same answers, slower).
FAST_PATHS = env_bool("GRIDCOMMAND_FAST_PATHS", True)
# The async pool of the lean paths (command/db_async.py: reports, tiles) on Daphne's event loop.
DB_ASYNC_POOL_MAX = env_int("DB_ASYNC_POOL_MAX", 10)
_default_db["CONN_MAX_AGE"] = 0
_default_db["TEST"] = {"NAME": env_str("DATABASE_TEST_NAME") or None}
DATABASES = {"default": _default_db}
# A streaming replica of the primary for the read-only map and OGC selectors (command/replica.py);
# lag is bounded by DATABASE_REPLICA_MAX_LAG_SECONDS (past it, or with the replica away, they
# read from the primary).
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL")
DATABASE_REPLICA_MAX_LAG_SECONDS = env_int("DATABASE_REPLICA_MAX_LAG_SECONDS", 5)
if DATABASE_REPLICA_URL:
    _replica_db = database_from_url(DATABASE_REPLICA_URL)
    _replica_options = dict(_default_db["OPTIONS"])  # type: ignore[call-overload]
    _replica_options.update(_replica_db["OPTIONS"])
    _replica_db.update({"OPTIONS": _replica_options, "CONN_MAX_AGE": 0, "TEST": {"MIRROR": "default"}})
    DATABASES["replica"] = _replica_db
DATABASE_ROUTERS = ["command.replica.ReplicaRouter"]

REDIS_URL = env_str("REDIS_URL") or localstack.default_redis_url()
# Pub/sub: one PUBLISH per wake, resubscribes by itself after a Redis restart, and measured
# faster than RedisChannelLayer in bench/latency.py (README). Wakes are hints either way.
CHANNEL_LAYER_BACKEND = env_str("CHANNEL_LAYER_BACKEND", "channels_redis.pubsub.RedisPubSubChannelLayer")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": CHANNEL_LAYER_BACKEND,
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    # redis-py 8 reads with a 5 s timeout while channels_redis blocks 5 s in
                    # BRPOP: idle consumers crash without this (SETUP-NOTES).
                    "socket_timeout": None,
                    # redis-py 8's asyncio pool raises past max_connections instead of waiting.
                    "max_connections": env_int("REDIS_MAX_CONNECTIONS", 10000),
                }
            ],
            # Separates the channel layers of several deployments (or test runs) on one Redis.
            "prefix": env_str("CHANNEL_PREFIX", "gc"),
            "capacity": env_int("CHANNEL_CAPACITY", 1000),
            "expiry": 60,
        },
    }
}
if CHANNEL_LAYER_BACKEND.endswith("RedisPubSubChannelLayer"):
    _layer_config: dict[str, object] = CHANNEL_LAYERS["default"]["CONFIG"]  # type: ignore[assignment]
    _layer_config.pop("capacity")
    _layer_config.pop("expiry")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "command" / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / ".local" / "static")))
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / ".local" / "media")))
# Uploaded photos: a folder (MEDIA_ROOT, one volume shared by every web process) or, with
# MEDIA_STORAGE=s3, an S3-compatible bucket through django-storages (AWS_* settings below).
MEDIA_STORAGE = env_str("MEDIA_STORAGE", "filesystem").lower()
if MEDIA_STORAGE not in {"filesystem", "s3"}:
    raise ImproperlyConfigured("MEDIA_STORAGE must be filesystem or s3")
_media_storage: dict[str, object] = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
if MEDIA_STORAGE == "s3":
    _media_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,
            "region_name": env_str("AWS_S3_REGION_NAME") or None,
            "access_key": env_str("AWS_ACCESS_KEY_ID") or None,
            "secret_key": env_str("AWS_SECRET_ACCESS_KEY") or None,
            # photos are personal data: private objects, served only through the permission check
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
    if not env_str("AWS_STORAGE_BUCKET_NAME"):
        raise ImproperlyConfigured("MEDIA_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME")
STORAGES = {
    "default": _media_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", DEBUG)

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

# Password guesses (command/lockout.py): after LOGIN_MAX_FAILURES failures of one account, or
# LOGIN_MAX_FAILURES_PER_ADDRESS from one client address, within LOGIN_LOCKOUT_SECONDS, logins
# of that account / from that address are refused for LOGIN_LOCKOUT_SECONDS (429, logged).
AUTHENTICATION_BACKENDS = ["command.lockout.LockoutBackend"]
LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 10)
LOGIN_MAX_FAILURES_PER_ADDRESS = env_int("LOGIN_MAX_FAILURES_PER_ADDRESS", 50)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 900)
# Every Daphne process shares one cache in Redis: DRF's rate limits (so N processes still allow
# the configured rate, not N times it), cached sessions, and the failed-login counters
# (command/lockout.py). Sessions are written to the database too (cached_db): a Redis restart
# logs nobody out, and the realtime heartbeat reads them there.
_cache_prefix = env_str("CHANNEL_PREFIX", "gc")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"{_cache_prefix}:cache",
        # a Redis that is away costs a request at most this long, not a hang
        "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
    },
    "logins": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"{_cache_prefix}:logins",
    },
}
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = 6

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "field_api.auth.FastTokenAuthentication",  # command.logins: one token rule on every channel
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # command.jsonbody: deep nesting and huge numbers are a 400 with a reason, not a 500
    "DEFAULT_PARSER_CLASSES": [
        "field_api.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "GridCommand API",
    "DESCRIPTION": "Field reporting, assignments and map layers of GridCommand.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- GridCommand ---------------------------------------------------------------------------
# Basemap tile URL template ({z}/{x}/{y}); empty means our own layers on a plain background.
BASEMAP_URL = env_str("BASEMAP_URL", "")
BASEMAP_ATTRIBUTION = env_str("BASEMAP_ATTRIBUTION", "")
# Coordinate system of the basemap: "wgs84" (also CGCS2000) or "gcj02" (common Chinese web maps).
BASEMAP_CRS = env_str("BASEMAP_CRS", "wgs84").lower()
if BASEMAP_CRS not in {"wgs84", "cgcs2000", "gcj02"}:
    raise ImproperlyConfigured("BASEMAP_CRS must be wgs84, cgcs2000 or gcj02")
# How long the event log keeps events that clients can resume from.
EVENT_RETENTION_HOURS = env_int("EVENT_RETENTION_HOURS", 72)
# Seconds between the websocket heartbeats that carry the latest seq.
REALTIME_HEARTBEAT_SECONDS = env_int("REALTIME_HEARTBEAT_SECONDS", 3)
# A live connection that sends nothing (not even an ack) for this long is closed.
REALTIME_CLIENT_TIMEOUT_SECONDS = env_int("REALTIME_CLIENT_TIMEOUT_SECONDS", 30)
# Bytes sent to one client and not yet acknowledged; past this it gets resync and is closed.
REALTIME_MAX_UNACKED_BYTES = env_int("REALTIME_MAX_UNACKED_BYTES", 4 * 1024 * 1024)
# A client message (subscribe, ack) longer than this is refused with an error message.
REALTIME_MAX_CLIENT_MESSAGE_BYTES = env_int("REALTIME_MAX_CLIENT_MESSAGE_BYTES", 16 * 1024)
# A resume that would replay more events than this gets resync (a snapshot is cheaper).
REALTIME_MAX_REPLAY = env_int("REALTIME_MAX_REPLAY", 20000)
# How many days location tracks of workers are kept.
WORKER_TRACK_RETENTION_DAYS = env_int("WORKER_TRACK_RETENTION_DAYS", 30)

# GDAL < 3.9 cannot forbid file/network access while it parses a spatial reference (gis.W001).
# Our defence: only the SRIDs below are ever accepted from a client (command/geometry.py,
# tested in tests/command/test_geometry.py), and no client-supplied SRS definition ever
# reaches GDAL. With that in place the warning is silenced on purpose.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]
ACCEPTED_SRIDS = (4326,)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}

# --- Field reporting (field_api, issue 4) --------------------------------------------------
REST_FRAMEWORK["EXCEPTION_HANDLER"] = "field_api.errors.exception_handler"
# Per-device keys for alarm buttons and other devices: Authorization: Device <key>.
REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] = [
    *REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"],
    "field_api.auth.DeviceTokenAuthentication",
]
# Django's HTML error pages (unmatched path, CSRF) become JSON under /api/ and /open311/.
MIDDLEWARE.insert(1, "field_api.middleware.api_json_errors")
# Requests per user per scope (DRF rate syntax); FIELD_API_RATE_<SCOPE> overrides one scope.
FIELD_API_RATES = {
    scope: env_str(f"FIELD_API_RATE_{scope.upper()}", default)
    for scope, default in {
        "reports": "120/min",
        "pings": "60/min",
        "incident_actions": "120/min",
        "auth": "20/min",
        "reads": "600/min",
    }.items()
}
# /api/docs/ serves Swagger UI from our own static files, never from a CDN.
INSTALLED_APPS.append("drf_spectacular_sidecar")
SPECTACULAR_SETTINGS.update(
    {
        "SWAGGER_UI_DIST": "SIDECAR",
        "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
        "REDOC_DIST": "SIDECAR",
        "COMPONENT_SPLIT_REQUEST": True,
        "POSTPROCESSING_HOOKS": [
            "drf_spectacular.hooks.postprocess_schema_enums",
            "field_api.schema.document_refusals",
        ],
    }
)
FIELD_API_MAX_JSON_BYTES = env_int("FIELD_API_MAX_JSON_BYTES", 64 * 1024)
PHOTO_MAX_BYTES = env_int("PHOTO_MAX_BYTES", 10 * 1024 * 1024)
PHOTO_MAX_PIXELS = env_int("PHOTO_MAX_PIXELS", 40_000_000)
PHOTO_MAX_COUNT = DATA_UPLOAD_MAX_NUMBER_FILES
FIELD_API_MAX_BODY_BYTES = PHOTO_MAX_COUNT * PHOTO_MAX_BYTES + 1024 * 1024
# The household registry import (CSV/XLSX, command/services/registry_import.py): largest file.
REGISTRY_IMPORT_MAX_BYTES = env_int("REGISTRY_IMPORT_MAX_BYTES", 20 * 1024 * 1024)

# --- Map layers (maps/, command/layer_queries.py) -------------------------------------------
# Largest bbox the GeoJSON and export channels accept, in square degrees (larger: use tiles).
try:
    MAP_MAX_BBOX_DEGREES2 = float(env_str("MAP_MAX_BBOX_SQUARE_DEGREES", "4"))
except ValueError as exc:
    raise ImproperlyConfigured("MAP_MAX_BBOX_SQUARE_DEGREES must be a number, e.g. 4 or 0.5") from exc
MAP_GEOJSON_MAX_LIMIT = env_int("MAP_GEOJSON_MAX_LIMIT", 50_000)
MAP_EXPORT_MAX_FEATURES = env_int("MAP_EXPORT_MAX_FEATURES", 200_000)
# Hotspots (command/analysis/): the incident history clustered by ST_ClusterDBSCAN per category
# and time window: within this distance, at least this many; per category overrides as
# "code=metres:count,..."; windows of HOTSPOT_WINDOW_DAYS, HOTSPOT_WINDOWS of them computed.
HOTSPOT_RADIUS_M = env_int("HOTSPOT_RADIUS_M", 100)
HOTSPOT_MIN_INCIDENTS = env_int("HOTSPOT_MIN_INCIDENTS", 5)
try:
    HOTSPOT_CATEGORY_PARAMS = hotspot_category_params_parse(
        env_str("HOTSPOT_CATEGORY_PARAMS", "traffic_accident=50:5,falling_object=80:5,parking_dispute=60:5")
    )
except ValueError as exc:
    raise ImproperlyConfigured(f"HOTSPOT_CATEGORY_PARAMS: {exc}") from exc
HOTSPOT_WINDOW_DAYS = env_int("HOTSPOT_WINDOW_DAYS", 30)
HOTSPOT_WINDOWS = env_int("HOTSPOT_WINDOWS", 3)
HOTSPOT_RECURRENT_WINDOWS = env_int("HOTSPOT_RECURRENT_WINDOWS", 3)
HOTSPOT_GROWTH_PERCENT = env_int("HOTSPOT_GROWTH_PERCENT", 25)
if not 1 <= HOTSPOT_WINDOW_DAYS <= 366 or not 1 <= HOTSPOT_WINDOWS <= 24:
    raise ImproperlyConfigured("HOTSPOT_WINDOW_DAYS must be 1-366 and HOTSPOT_WINDOWS 1-24")
if not 1 <= HOTSPOT_RECURRENT_WINDOWS <= HOTSPOT_WINDOWS:
    raise ImproperlyConfigured("HOTSPOT_RECURRENT_WINDOWS must be between 1 and HOTSPOT_WINDOWS")
# Hex-bin heat: hexagons this many metres across (ST_HexagonGrid).
HEXBIN_SIZE_M = env_int("HEXBIN_SIZE_M", 100)
if not 10 <= HEXBIN_SIZE_M <= 5000:
    raise ImproperlyConfigured("HEXBIN_SIZE_M must be between 10 and 5000")
# Grid-cell performance: a cell below this SLA compliance (percent), or this many points worse
# than the period before, is flagged as falling behind (with one incident's slack:
# command/analysis/cells.py).
CELL_SLA_TARGET_PERCENT = env_int("CELL_SLA_TARGET_PERCENT", 80)
CELL_BEHIND_DROP_POINTS = env_int("CELL_BEHIND_DROP_POINTS", 10)
# The browser that prints the period report's PDF (Debian's Chromium; never a downloaded one).
CHROMIUM_PATH = env_str("CHROMIUM_PATH", "/usr/bin/chromium")
# Period reports written by `manage.py analysis_report` (cron) land here.
ANALYSIS_REPORT_DIR = Path(env_str("ANALYSIS_REPORT_DIR", str(BASE_DIR / ".local" / "reports")))


# --- Resident services (field_api/residents/, command/services/alarms.py ...) --------------------------
# A home alarm's signed call must carry a timestamp this close to the server's clock.
ALARM_TIMESTAMP_WINDOW_SECONDS = env_int("ALARM_TIMESTAMP_WINDOW_SECONDS", 300)
# A device is offline after this many heartbeat intervals without a call.
ALARM_MISSED_HEARTBEATS = env_int("ALARM_MISSED_HEARTBEATS", 2)
# How often each Daphne process runs the periodic jobs (command/periodic.py); 0: never (cron runs
# ``manage.py periodic_jobs`` instead).
PERIODIC_JOBS_SECONDS = env_int("PERIODIC_JOBS_SECONDS", 30)
# API tokens (phones, GIS clients, the websocket's token) expire this many days after they were
# issued (0: never): the periodic job ``api_tokens_expire`` deletes them, which every channel
# (REST, the lean report path, websocket handshakes and open sockets) sees at once.
API_TOKEN_MAX_AGE_DAYS = env_int("API_TOKEN_MAX_AGE_DAYS", 30)
# A request without a category (not yet triaged) is due this long after it came in.
REQUEST_DEFAULT_SLA_MINUTES = env_int("REQUEST_DEFAULT_SLA_MINUTES", 1440)
# Residents' sign-in codes: the SMS backend ("console": the code goes to the server log, for the
# demo; a dotted path to a class with send(phone, text) for a real provider), their life and guesses.
SMS_BACKEND = env_str("SMS_BACKEND", "console")
PHONE_CODE_TTL_SECONDS = env_int("PHONE_CODE_TTL_SECONDS", 300)
PHONE_CODE_MAX_ATTEMPTS = env_int("PHONE_CODE_MAX_ATTEMPTS", 5)
PHONE_CODE_PER_HOUR = env_int("PHONE_CODE_PER_HOUR", 5)


# Volunteer points: what each thing earns ("kind=points,..."), and the yearly points for 2..5 stars
# (fewer than the first: 1 star).
def _pairs(name: str, default: str) -> dict[str, int]:
    try:
        return {k.strip(): int(v) for k, _sep, v in (p.partition("=") for p in env_str(name, default).split(","))}
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must look like {default!r}") from exc


VOLUNTEER_POINTS = _pairs("VOLUNTEER_POINTS", "order=10,visit=2,activity=5")
try:
    VOLUNTEER_STAR_THRESHOLDS = [int(v) for v in env_str("VOLUNTEER_STAR_THRESHOLDS", "30,80,150,300").split(",")]
except ValueError as exc:
    raise ImproperlyConfigured("VOLUNTEER_STAR_THRESHOLDS must be four whole numbers, e.g. 30,80,150,300") from exc
if len(VOLUNTEER_STAR_THRESHOLDS) != 4 or sorted(VOLUNTEER_STAR_THRESHOLDS) != VOLUNTEER_STAR_THRESHOLDS:
    raise ImproperlyConfigured("VOLUNTEER_STAR_THRESHOLDS must be four rising numbers: the points for 2, 3, 4, 5 stars")
if set(VOLUNTEER_POINTS) != {"order", "visit", "activity"}:
    raise ImproperlyConfigured("VOLUNTEER_POINTS must give order, visit and activity, e.g. order=10,visit=2,activity=5")
# Map pages draw a layer from inline GeoJSON up to this many features, as vector tiles above.
MAP_INLINE_MAX_FEATURES = env_int("MAP_INLINE_MAX_FEATURES", 2000)

# --- Health and metrics (command/health.py, command/metrics.py) ------------------------------
# /healthz answers 503 when screens of the process (or the replica) are this far behind.
HEALTHZ_MAX_LAG_SECONDS = env_int("HEALTHZ_MAX_LAG_SECONDS", 30)
# Client addresses that may read /metrics (Prometheus); everyone else gets a 404.
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", ["127.0.0.0/8", "::1/128"])
