"""Input and output serializers of the market endpoints.

Inputs check presence and type; symbol, source, timeframe and limit rules live in
market.domain and are the same for REST and WebSocket.
"""

from django.conf import settings
from rest_framework import serializers

from ..domain.errors import InvalidInput
from ..domain.params import HISTORY_LIMIT, LIMIT_MAX, LIMIT_MIN, OHLC_LIMIT, ohlc_params, parse_limit
from ..domain.symbols import SOURCE_HELP, normalize_symbol, price_market, resolve_source
from ..domain.timeframes import TIMEFRAMES


def limit_field(default: int, **kwargs) -> serializers.IntegerField:
    return serializers.IntegerField(required=False, default=default, min_value=LIMIT_MIN, max_value=LIMIT_MAX, **kwargs)


class Query(serializers.Serializer):
    """A request's query parameters. The fields document them (the OpenAPI schema); `clean` applies
    market.domain's rules, the same for REST, the ASGI edge and WebSocket."""

    @classmethod
    def of(cls, request) -> dict:
        serializer = cls(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def to_internal_value(self, data):
        # Query parameters arrive as strings; repeated ones use the last value. A parameter
        # that is present must have a value: `?timeframe=` is an error, not the default.
        for key in self.fields:
            if key in data and data.get(key) == "":
                raise InvalidInput(f"Invalid {key}: empty value")
        return self.clean({key: data.get(key) for key in self.fields})

    def clean(self, data: dict) -> dict:
        raise NotImplementedError


class PriceQuery(Query):
    symbol = serializers.CharField(help_text="Base asset: BTC, btc, BTCUSDT, BTC-USD or BTC/USDT")
    source = serializers.CharField(
        required=False, help_text=f"{SOURCE_HELP}, or composite (default: the first configured exchange)"
    )

    def clean(self, data):
        source, symbol = price_market(data.get("symbol"), data.get("source"), settings.EXCHANGES)
        return {"symbol": symbol, "source": source}


class OhlcQuery(Query):
    symbol = serializers.CharField(help_text="Base asset, e.g. ETH")
    timeframe = serializers.ChoiceField(choices=list(TIMEFRAMES), required=False, default="1h")
    limit = limit_field(OHLC_LIMIT)
    source = serializers.CharField(required=False, help_text=SOURCE_HELP)
    start = serializers.IntegerField(required=False, min_value=0, help_text="epoch ms: first candle open time")
    end = serializers.IntegerField(required=False, min_value=0, help_text="epoch ms: last candle open time")

    def clean(self, data):
        return ohlc_params(data, settings.EXCHANGES)


class HistoryQuery(Query):
    symbol = serializers.CharField()
    source = serializers.CharField(help_text="Binance, Coinbase or Kraken (any case)")
    limit = limit_field(HISTORY_LIMIT)
    format = serializers.ChoiceField(choices=["json", "csv"], required=False, default="json")

    def clean(self, data):
        if not data.get("source"):
            raise InvalidInput("Missing required parameter: source")
        fmt = data.get("format") or "json"
        if fmt not in ("json", "csv"):
            raise InvalidInput(f"Invalid format: {fmt}. Must be json or csv")
        return {
            "symbol": normalize_symbol(data.get("symbol")),
            "source": resolve_source(data["source"], settings.EXCHANGES),
            "limit": parse_limit(data.get("limit"), default=HISTORY_LIMIT),
            "format": fmt,
        }


# --- outputs (documentation of the shapes built by market.payloads) ---------------------------
class PriceOut(serializers.Serializer):
    symbol = serializers.CharField()
    price = serializers.FloatField()
    timestamp = serializers.IntegerField(help_text="epoch ms")
    source = serializers.CharField()
    stale = serializers.BooleanField(help_text="older than 3 poll intervals")
    sources = serializers.ListField(child=serializers.CharField(), required=False, help_text="composite only")


class CandleOut(serializers.Serializer):
    timestamp = serializers.IntegerField(help_text="open time, epoch ms")
    open = serializers.FloatField()
    high = serializers.FloatField()
    low = serializers.FloatField()
    close = serializers.FloatField()
    volume = serializers.FloatField()
    closed = serializers.BooleanField()


class OhlcOut(serializers.Serializer):
    symbol = serializers.CharField()
    timeframe = serializers.CharField()
    source = serializers.CharField()
    ohlc = CandleOut(many=True)


class WidgetPriceOut(serializers.Serializer):
    price = serializers.FloatField()
    symbol = serializers.CharField()
    source = serializers.CharField()
    timestamp = serializers.CharField(help_text="ISO-8601 UTC")
    change_pct = serializers.FloatField(allow_null=True)


class HistoryOut(serializers.Serializer):
    timestamp = serializers.CharField(help_text="ISO-8601 UTC")
    source = serializers.CharField()
    symbol = serializers.CharField()
    price = serializers.FloatField()
    change_pct = serializers.FloatField(allow_null=True)


class ErrorOut(serializers.Serializer):
    error = serializers.CharField()
    timestamp = serializers.CharField()


class RateLimitOut(serializers.Serializer):
    error = serializers.CharField()
    detail = serializers.CharField()
    retry_after = serializers.IntegerField()
