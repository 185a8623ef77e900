"""/api/alerts: an API key's price alerts, with signed webhooks. One view per resource; each finds
the calling key (401 without one), calls a service or selector, shapes the answer."""

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from apikeys.credentials import key_from_meta
from apikeys.selectors import key_of_request
from core.errors import error_body
from market.api import serializers as market_s
from market.api.views import ERRORS

from .. import selectors, services
from . import serializers as s

KEYED = [{"Api-Key": []}, {"X-API-Key": []}]
AUTH = {401: OpenApiResponse(market_s.ErrorOut, description="No API key, or a wrong or revoked one"), 429: ERRORS[429]}
NOT_FOUND = {404: OpenApiResponse(market_s.ErrorOut, description="Not one of this key's alerts")}


def _key_required(request):
    """401: no key (the rate limiter answered a wrong one already; one revoked since it last
    looked, a moment ago, is named as wrong here)."""
    if key_from_meta(request.META) is not None:
        body = error_body("Invalid API key", detail="The API key is wrong, revoked or expired.")
    else:
        body = error_body("An API key is required", detail="Send Authorization: Api-Key <key> or X-API-Key: <key>.")
    return Response(body, status=401, headers={"WWW-Authenticate": "Api-Key"})


class AlertsView(APIView):
    @extend_schema(
        operation_id="alerts_list", auth=KEYED, responses={200: s.AlertListOut, **AUTH},
        summary="This API key's price alerts, newest first",
    )
    def get(self, request):
        key = key_of_request(request)
        if key is None:
            return _key_required(request)
        alerts = [selectors.alert_payload(a) for a in selectors.alerts_of(key)]
        return Response({"alerts": alerts, "count": len(alerts), "limit": settings.ALERTS_PER_KEY})

    @extend_schema(
        operation_id="alerts_create", auth=KEYED, request=s.AlertIn,
        responses={201: s.AlertCreatedOut, 400: ERRORS[400], 404: ERRORS[404],
                   409: OpenApiResponse(market_s.ErrorOut, description="This key has ALERTS_PER_KEY alerts already"),
                   **AUTH},
        examples=[OpenApiExample("BTC above 70,000", request_only=True, value={
            "symbol": "BTC", "source": "binance", "above": 70000, "webhook_url": "https://example.com/hooks/btc"}),
            OpenApiExample("ETH moves 5% in an hour, every time", request_only=True, value={
                "symbol": "ETH", "change_pct": 5, "window": "1h", "repeat": True, "webhook_url": "https://example.com/hooks"})],
        summary="Set a price alert that POSTs a signed webhook when it fires (its secret is shown once)",
    )
    def post(self, request):
        key = key_of_request(request)
        if key is None:
            return _key_required(request)
        serializer = s.AlertIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        alert, secret = services.create_alert(key, **serializer.validated_data)
        return Response({**selectors.alert_payload(alert), "secret": secret}, status=201)


class AlertView(APIView):
    @extend_schema(operation_id="alerts_get", auth=KEYED, responses={200: s.AlertOut, **NOT_FOUND, **AUTH},
                   summary="One of this API key's price alerts")
    def get(self, request, alert_id: int):
        key = key_of_request(request)
        if key is None:
            return _key_required(request)
        return Response(selectors.alert_payload(selectors.alert_of(key, alert_id)))

    @extend_schema(operation_id="alerts_delete", auth=KEYED, responses={204: None, **NOT_FOUND, **AUTH},
                   summary="Delete one of this API key's price alerts")
    def delete(self, request, alert_id: int):
        key = key_of_request(request)
        if key is None:
            return _key_required(request)
        services.delete_alert(key, alert_id)
        return Response(status=204)
