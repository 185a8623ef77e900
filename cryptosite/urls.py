from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from alerts.api import views as alerts
from market.api import views as market
from market.depth.views import OrderBookView
from market.indicators.views import IndicatorsView
from sentiment import views as sentiment

from .health import HealthView, metrics_view


def _temporary_redirect(request, url: str) -> HttpResponseRedirect:
    query = request.META.get("QUERY_STRING")
    response = HttpResponseRedirect(f"{url}?{query}" if query else url)
    response.status_code = 307
    return response


# The original servers' paths have no trailing slash.
api = [
    path("api/market/price", market.PriceView.as_view(), name="price"),
    path("api/market/ohlc", market.OhlcView.as_view(), name="ohlc"),
    path("api/market/indicators", IndicatorsView.as_view(), name="indicators"),
    path("api/market/orderbook", OrderBookView.as_view(), name="orderbook"),
    path("api/sentiment/analyze", sentiment.AnalyzeView.as_view(), name="sentiment"),
    path("api/alerts", alerts.AlertsView.as_view(), name="alerts"),
    path("api/alerts/<int:alert_id>", alerts.AlertView.as_view(), name="alert"),
    path("prices", market.PricesView.as_view(), name="prices"),
    path("coins", market.CoinsView.as_view(), name="coins"),
    path("history", market.HistoryView.as_view(), name="history"),
    path("health", HealthView.as_view(), name="health"),
]

urlpatterns = [
    *api,
    # ...and with one, they redirect there (307 keeps the method and body), as FastAPI did.
    re_path(
        r"^(?P<target>api/market/price|api/market/ohlc|api/market/indicators|api/market/orderbook|api/sentiment/analyze|prices|coins|history|health)/$",
        lambda request, target: _temporary_redirect(request, f"/{target}"),
    ),
    path("metrics", metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("redoc", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("admin/", admin.site.urls),
    path("widgets/", include("market.widgets")),
]
