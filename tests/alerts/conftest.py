import pytest

from alerts import services
from apikeys import services as key_services
from apikeys.models import ApiKey
from cryptosite.celery import app as celery_app
from tests.apikeys.conftest import served  # noqa: F401  (the application as served, for test_api)


@pytest.fixture(autouse=True)
def _alert_settings(settings):
    """Webhooks to this machine's receiver, quick retries (six tries in about a tenth of a second),
    repeat alerts without a cooldown (tests/security tests it), and no index kept from another test."""
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    settings.ALERT_REPEAT_COOLDOWN_SECONDS = 0
    settings.ALERT_WEBHOOK_TIMEOUT = 0.3
    settings.ALERT_RETRY_BASE_SECONDS = 0.01
    settings.ALERT_RETRY_MAX_SECONDS = 0.02
    settings.ALERT_RETRY_FOR_SECONDS = 0.1
    services.forget_indexes()
    yield
    services.forget_indexes()


@pytest.fixture(autouse=True)
def tracked(request):
    """The seeded tracked markets (a transactional test before this one emptied the tables)."""
    if "django_db_setup" not in request.fixturenames and not request.node.get_closest_marker("django_db"):
        return
    from market.markets import tracked_set_changed
    from market.models import TrackedMarket

    for source in ("binance", "coinbase"):
        for symbol in ("BTC", "ETH", "SOL", "ADA"):
            TrackedMarket.objects.get_or_create(source=source, symbol=symbol)
    tracked_set_changed()


@pytest.fixture
def eager_celery():
    """Queued tasks run at once in this process (a retry too, without its wait)."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


def new_key(name: str = "alice") -> tuple[ApiKey, str]:
    return key_services.create_key(name, "standard")
