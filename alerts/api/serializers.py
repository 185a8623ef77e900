"""Input and output serializers of /api/alerts. The condition's rules are market.domain.alerts'
(the same as the WebSocket alerts'); the webhook target's are alerts.webhooks'."""

from django.conf import settings
from rest_framework import serializers

from market.domain.alerts import parse_alert
from market.domain.errors import InvalidInput
from market.domain.symbols import SOURCE_HELP, normalize_symbol, resolve_source

from .. import webhooks

FIELDS = ("symbol", "source", "above", "below", "change_pct", "window", "repeat", "webhook_url")


class AlertIn(serializers.Serializer):
    symbol = serializers.CharField(help_text="Base asset: BTC, btc, BTCUSDT, BTC-USD or BTC/USDT")
    source = serializers.CharField(required=False, help_text=f"{SOURCE_HELP} (default: the first configured)")
    above = serializers.FloatField(required=False, help_text="fires at the first price at or above this level")
    below = serializers.FloatField(required=False, help_text="fires at the first price at or below this level")
    change_pct = serializers.FloatField(required=False, help_text="fires at a move of at least this many percent "
                                                                  "either way over `window`")
    window = serializers.CharField(required=False, help_text="with change_pct: 1m to 1d, e.g. 15m, 1h, 1d")
    repeat = serializers.BooleanField(required=False, default=False,
                                      help_text="fire again after a price that no longer meets the condition")
    webhook_url = serializers.URLField(help_text="http(s) URL that receives the signed POST")

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise InvalidInput("The body must be a JSON object")
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            raise InvalidInput(f"Unknown field: {unknown[0]!s:.40}")
        source = resolve_source(data.get("source"), settings.EXCHANGES)
        spec = parse_alert(data, source, normalize_symbol(data.get("symbol")))
        if data.get("webhook_url") is None:
            raise InvalidInput("Missing required field: webhook_url")
        url = webhooks.check_target(data["webhook_url"], settings.ALERT_WEBHOOK_ALLOW_PRIVATE)
        return {"spec": spec, "webhook_url": url}


class AlertOut(serializers.Serializer):
    id = serializers.IntegerField()
    symbol = serializers.CharField()
    source = serializers.CharField()
    condition = serializers.ChoiceField(choices=["above", "below", "change_pct"])
    threshold = serializers.FloatField(help_text="the level (above, below) or the percent (change_pct)")
    window = serializers.CharField(allow_null=True, help_text="change_pct only")
    repeat = serializers.BooleanField()
    webhook_url = serializers.CharField()
    state = serializers.ChoiceField(choices=["armed", "fired", "rearming"],
                                    help_text="armed: waiting for a price that meets it; fired: done (no repeat); "
                                              "rearming: a repeat alert waiting for a price that no longer meets it")
    fired_count = serializers.IntegerField()
    last_fired = serializers.IntegerField(allow_null=True, help_text="epoch ms")
    created = serializers.IntegerField(help_text="epoch ms")


class AlertCreatedOut(AlertOut):
    secret = serializers.CharField(help_text="the HMAC-SHA256 key of this alert's webhook signatures: shown this once")


class AlertListOut(serializers.Serializer):
    alerts = AlertOut(many=True)
    count = serializers.IntegerField()
    limit = serializers.IntegerField(help_text="the most alerts a key may have (ALERTS_PER_KEY)")
