"""GET /api/market/orderbook: one exchange's order book, or the composite across them."""

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from ..api.serializers import Query
from ..api.views import ERRORS
from ..domain.errors import InvalidInput
from ..domain.params import BOOK_DEPTH_MAX, BOOK_DEPTH_REST, parse_int
from ..domain.symbols import SOURCE_HELP, normalize_symbol, resolve_source
from .services import order_book


class OrderBookQuery(Query):
    symbol = serializers.CharField(help_text="Base asset, e.g. BTC")
    source = serializers.CharField(required=False, help_text=f"{SOURCE_HELP}, or composite (default: the first exchange)")
    depth = serializers.IntegerField(required=False, default=BOOK_DEPTH_REST, min_value=1, max_value=BOOK_DEPTH_MAX,
                                     help_text="levels a side")

    def clean(self, data):
        source = resolve_source(data.get("source"), settings.EXCHANGES, composite=True)
        if data.get("depth") is not None and not str(data["depth"]).strip():
            raise InvalidInput("Invalid depth: empty value")
        return {"symbol": normalize_symbol(data.get("symbol")), "source": source,
                "depth": parse_int(data.get("depth"), "depth", default=BOOK_DEPTH_REST, lo=1, hi=BOOK_DEPTH_MAX)}


class OrderBookOut(serializers.Serializer):
    symbol = serializers.CharField()
    source = serializers.CharField()
    depth = serializers.IntegerField()
    timestamp = serializers.IntegerField(help_text="epoch ms of the book (the exchange's time when it gives one)")
    bids = serializers.ListField(child=serializers.ListField(), help_text="[price, quantity] as the exchange printed them, "
                                 "best first; composite: [price, quantity, [exchanges]]")
    asks = serializers.ListField(child=serializers.ListField())
    spread = serializers.FloatField(allow_null=True)
    mid = serializers.FloatField(allow_null=True)
    depth_within_pct = serializers.DictField(help_text='{"0.5": {"bid": qty, "ask": qty}, "1": ..., "2": ...}: quantity '
                                             "priced within that percent of the mid; null where the fetched 100 "
                                             "levels end inside the band")
    sources = serializers.ListField(child=serializers.CharField(), required=False, help_text="composite: exchanges used")


class OrderBookView(APIView):
    @extend_schema(
        operation_id="market_orderbook",
        parameters=[OrderBookQuery],
        responses={200: OrderBookOut, **ERRORS},
        summary="Order book of one exchange, or consolidated across the exchanges (source=composite)",
        examples=[OpenApiExample("BTC on Binance", response_only=True, value={
            "symbol": "BTC", "source": "binance", "depth": 2, "timestamp": 1700000000000,
            "bids": [["50000.10000000", "0.51200000"], ["50000.00000000", "1.00000000"]],
            "asks": [["50000.20000000", "0.30000000"], ["50000.50000000", "2.00000000"]],
            "spread": 0.1, "mid": 50000.15,
            "depth_within_pct": {"0.5": {"bid": "1.512", "ask": "2.3"}, "1": {"bid": "1.512", "ask": "2.3"},
                                 "2": {"bid": None, "ask": "2.3"}}})],
    )
    def get(self, request):
        q = OrderBookQuery.of(request)
        return Response(order_book(q["source"], q["symbol"], q["depth"]))
