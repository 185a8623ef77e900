"""Reads of price alerts: a key's own, as the API shows them."""

from apikeys.models import ApiKey
from market.domain.errors import NotFound

from .models import PriceAlert


def alerts_of(key: ApiKey) -> list[PriceAlert]:
    return list(PriceAlert.objects.filter(key=key).order_by("-id"))


def alert_of(key: ApiKey, alert_id: int) -> PriceAlert:
    """One of this key's alerts; another key's is not found, as one that does not exist."""
    alert = PriceAlert.objects.filter(key=key, pk=alert_id).first()
    if alert is None:
        raise NotFound(f"Alert not found: {alert_id}")
    return alert


def alert_payload(alert: PriceAlert) -> dict:
    return {
        "id": alert.id, "symbol": alert.symbol, "source": alert.source, "condition": alert.condition,
        "threshold": alert.threshold, "window": alert.window or None, "repeat": alert.repeat,
        "webhook_url": alert.webhook_url, "state": alert.state, "fired_count": alert.fired_count,
        "last_fired": int(alert.last_fired_at.timestamp() * 1000) if alert.last_fired_at else None,
        "created": int(alert.created_at.timestamp() * 1000),
    }
