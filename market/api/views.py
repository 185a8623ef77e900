"""Market REST endpoints: one view per operation; each parses, calls a service or selector,
and shapes the answer."""

import csv
import io

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import composite, documents, prices, selectors
from ..candles import candles_for_request
from ..payloads import history_payload, number, stored_candle_payloads
from . import serializers as s

ERRORS = {
    400: OpenApiResponse(s.ErrorOut, description="Invalid or missing parameter"),
    401: OpenApiResponse(s.ErrorOut, description="Wrong or revoked API key"),
    404: OpenApiResponse(s.ErrorOut, description="Unknown symbol or source"),
    429: OpenApiResponse(s.RateLimitOut, description="Rate limit exceeded"),
    502: OpenApiResponse(s.ErrorOut, description="The exchange answered with an error or unparseable data"),
    503: OpenApiResponse(s.ErrorOut, description="The exchange cannot be reached, or no data yet"),
    504: OpenApiResponse(s.ErrorOut, description="The exchange did not answer in time"),
}


class PriceView(APIView):
    @extend_schema(
        operation_id="market_price",
        parameters=[s.PriceQuery],
        responses={200: s.PriceOut, **ERRORS},
        examples=[
            OpenApiExample(
                "BTC on Binance",
                value={"symbol": "BTC", "price": 50000.5, "timestamp": 1633659200000, "source": "binance", "stale": False},
                response_only=True,
            )
        ],
        summary="Current price of a symbol",
    )
    def get(self, request):
        q = s.PriceQuery.of(request)
        if q["source"] == "composite":
            return Response(_composite(q["symbol"]))
        return Response(documents.price_body(prices.fresh_or_live_tick(q["source"], q["symbol"])))


def _composite(symbol: str) -> dict:
    found = composite.composite_of(symbol)
    return {"symbol": symbol, "price": number(found.price), "timestamp": found.timestamp_ms, "source": "composite",
            "sources": found.sources, "stale": found.stale}


class OhlcView(APIView):
    @extend_schema(
        operation_id="market_ohlc",
        parameters=[s.OhlcQuery],
        responses={200: s.OhlcOut, **ERRORS},
        summary="OHLC candles, oldest first",
        examples=[
            OpenApiExample(
                "ETH 1h",
                value={"symbol": "ETH", "timeframe": "1h", "source": "binance", "ohlc": [
                    {"timestamp": 1633658400000, "open": 2000.0, "high": 2100.0, "low": 1900.0, "close": 2050.0,
                     "volume": 1234567.89, "closed": True}]},
                response_only=True,
            )
        ],
    )
    def get(self, request):
        q = s.OhlcQuery.of(request)

        def build(now: int) -> dict:
            candles = candles_for_request(q["source"], q["symbol"], q["timeframe"], q["limit"], q["start"], q["end"], now)
            return {"symbol": q["symbol"], "timeframe": q["timeframe"], "source": q["source"], "ohlc": stored_candle_payloads(candles)}

        return HttpResponse(documents.ohlc(q, build), content_type="application/json")


class PricesView(APIView):
    @extend_schema(
        operation_id="widget_prices",
        responses={200: OpenApiResponse(description="{Source: {SYMBOL: price entry}}"), 401: ERRORS[401], 429: ERRORS[429]},
        summary="Latest snapshot of every tracked market, by source then symbol",
    )
    def get(self, request):
        return HttpResponse(documents.prices(), content_type="application/json")


class CoinsView(APIView):
    @extend_schema(
        operation_id="widget_coins",
        responses={200: OpenApiResponse(description='{"Binance": ["BTC", ...]}'), 401: ERRORS[401], 429: ERRORS[429]},
        summary="Tracked symbols per source",
    )
    def get(self, request):
        return HttpResponse(documents.coins(), content_type="application/json")


CSV_HEADER = ["timestamp", "source", "symbol", "price", "change_pct"]


class HistoryView(APIView):
    @extend_schema(
        operation_id="widget_history",
        parameters=[s.HistoryQuery],
        responses={
            (200, "application/json"): s.HistoryOut(many=True),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="format=csv: timestamp,source,symbol,price,change_pct"),
            400: ERRORS[400], 401: ERRORS[401], 404: ERRORS[404], 429: ERRORS[429],
        },
        summary="Stored ticks, newest first (format=csv for the original price log's columns)",
    )
    def get(self, request):
        q = s.HistoryQuery.of(request)
        rows = [history_payload(t) for t in selectors.history(q["source"], q["symbol"], q["limit"])]
        if q["format"] == "csv":
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=CSV_HEADER, lineterminator="\n")
            writer.writeheader()
            for row in rows:
                writer.writerow({**row, "change_pct": "" if row["change_pct"] is None else row["change_pct"]})
            return HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        return Response(rows)
