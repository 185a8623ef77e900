"""GET /api/market/indicators: technical indicators on stored candles, one row per candle."""

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from .. import documents
from ..api.serializers import OhlcQuery, limit_field
from ..api.views import ERRORS
from ..domain.params import INDICATORS_LIMIT, ohlc_params
from .services import indicator_rows
from .spec import MAX_INDICATORS, SIGNATURES, parse_indicators


class IndicatorsQuery(OhlcQuery):
    limit = limit_field(INDICATORS_LIMIT)
    indicators = serializers.CharField(
        help_text=f"Comma-separated, at most {MAX_INDICATORS}: " + ", ".join(
            f"{name}" + "".join(f":{p}" for p in defaults) for name, (_, defaults) in SIGNATURES.items()),
    )

    def clean(self, data):
        q = ohlc_params({**data, "limit": data.get("limit") or INDICATORS_LIMIT}, settings.EXCHANGES)
        q["indicators"] = parse_indicators(data.get("indicators"))
        return q


class IndicatorRow(serializers.Serializer):
    timestamp = serializers.IntegerField(help_text="the candle's open time, epoch ms")
    closed = serializers.BooleanField()


class IndicatorsOut(serializers.Serializer):
    symbol = serializers.CharField()
    timeframe = serializers.CharField()
    source = serializers.CharField()
    indicators = serializers.ListField(child=serializers.CharField(), help_text="the keys of each row's values")
    rows = IndicatorRow(many=True, help_text="oldest first; each indicator under its key, null where it has no "
                                             "value yet (macd and bbands: objects)")


class IndicatorsView(APIView):
    @extend_schema(
        operation_id="market_indicators",
        parameters=[IndicatorsQuery],
        responses={200: IndicatorsOut, **ERRORS},
        summary="Technical indicators (TA-Lib) on stored candles, oldest first",
        examples=[OpenApiExample("BTC 1h", response_only=True, value={
            "symbol": "BTC", "timeframe": "1h", "source": "binance", "indicators": ["sma_20", "rsi_14", "macd_12_26_9"],
            "rows": [{"timestamp": 1633658400000, "closed": True, "sma_20": 50012.5, "rsi_14": 61.2,
                      "macd_12_26_9": {"macd": 120.4, "signal": 98.1, "hist": 22.3}}]})],
    )
    def get(self, request):
        q = IndicatorsQuery.of(request)
        indicators = q.pop("indicators")
        keys = [i.key for i in indicators]

        def build(now: int) -> dict:
            return {"symbol": q["symbol"], "timeframe": q["timeframe"], "source": q["source"], "indicators": keys,
                    "rows": indicator_rows(q, indicators, now)}

        body = documents.ohlc(q, build, variant="indicators:" + ",".join(keys))
        return HttpResponse(body, content_type="application/json")

