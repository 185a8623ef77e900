"""Server-rendered widget pages: the data is in the first paint, then static/js/stream.js keeps
it live over /ws (falling back to polling the REST endpoints)."""

from django.conf import settings
from django.shortcuts import render
from django.urls import path, reverse

from . import selectors
from .candles import candles_for_request
from .depth.services import order_book
from .domain.errors import MarketError
from .domain.params import parse_int
from .domain.symbols import display_name, normalize_symbols, resolve_source
from .domain.timeframes import TIMEFRAMES, parse_timeframe
from .exchanges import ExchangeError
from .indicators.services import indicator_rows
from .indicators.spec import parse_indicators
from .payloads import history_payload, stored_candle_payloads, widget_price_payload

THEMES = ("dark", "light")
# The chart's overlay choices offered in the gallery (any `indicators=` list works in the URL).
GALLERY_INDICATORS = (("sma:20", "SMA 20"), ("ema:50", "EMA 50"), ("bbands:20:2", "Bollinger 20, 2"),
                      ("vwap", "VWAP"), ("rsi:14", "RSI 14"), ("macd:12:26:9", "MACD 12, 26, 9"))
CHART_CANDLES = 300
MAX_WIDGET_SYMBOLS = 20


def _theme(request) -> str:
    theme = request.GET.get("theme", "dark")
    if theme not in THEMES:
        raise MarketError(f"Invalid theme: {theme}. Must be dark or light")
    return theme


def _error(request, exc: MarketError):
    return render(request, "widgets/error.html", {"message": str(exc), "theme": "dark"}, status=exc.status)


def _common(theme: str) -> dict:
    return {"theme": theme, "poll_interval_ms": int(settings.POLL_INTERVAL * 1000)}


def prices(request):
    try:
        theme = _theme(request)
        tracked = selectors.tracked_by_source()
        sources = [resolve_source(request.GET["source"], settings.EXCHANGES)] if request.GET.get("source") else list(tracked)
        if request.GET.get("symbols"):
            symbols = normalize_symbols(request.GET["symbols"], MAX_WIDGET_SYMBOLS)
            markets = {src: symbols for src in sources}
        else:
            markets = {src: tracked.get(src, []) for src in sources}
    except MarketError as exc:
        return _error(request, exc)
    ticks = {(t.source, t.symbol): t for t in selectors.latest_ticks(markets)}
    rows = []
    for src, symbols in markets.items():
        for symbol in symbols:
            tick = ticks.get((src, symbol))
            rows.append({
                "source": src, "source_name": display_name(src), "symbol": symbol,
                "tick": widget_price_payload(tick) if tick else None,
                "timestamp_ms": tick.timestamp_ms if tick else None,
                "received_ms": tick.received_ms if tick else None,
                "stale": tick is None or not selectors.is_fresh(tick),
            })
    config = {**_common(theme), "markets": [{"source": r["source"], "symbol": r["symbol"]} for r in rows],
              "stale_after_ms": {src: selectors.stale_after_ms(src) for src in markets}}
    return render(request, "widgets/prices.html", {"rows": rows, "config": config, "theme": theme})


def chart(request):
    try:
        theme = _theme(request)
        symbol = normalize_symbols(request.GET.get("symbol", "BTC"), 1)[0]
        timeframe = parse_timeframe(request.GET.get("timeframe", "1h"))
        source = resolve_source(request.GET.get("source") or None, settings.EXCHANGES)
        wanted = request.GET.get("indicators", "")
        indicators = parse_indicators(wanted) if wanted.strip() else []
        now = selectors.now_ms()
        candles = candles_for_request(source, symbol, timeframe, CHART_CANDLES, None, None, now)
        q = {"source": source, "symbol": symbol, "timeframe": timeframe, "limit": CHART_CANDLES, "start": None, "end": None}
        rows = indicator_rows(q, indicators, now) if indicators else []
    except (MarketError, ExchangeError) as exc:
        return _error(request, exc)
    tracked = selectors.tracked_by_source()
    cards = []
    for src, symbols in tracked.items():
        for sym in symbols:
            history = [history_payload(t) for t in reversed(selectors.history(src, sym, 30))]
            cards.append({"source": src, "source_name": display_name(src), "symbol": sym, "points": history})
    config = {
        **_common(theme), "symbol": symbol, "timeframe": timeframe, "source": source,
        "candles": stored_candle_payloads(candles), "cards": cards,
        "indicators": {"spec": ",".join(i.key.replace("_", ":") for i in indicators), "keys": [i.key for i in indicators],
                       "rows": rows},
    }
    keep = f"&indicators={config['indicators']['spec']}" if indicators else ""
    switcher = [{"timeframe": tf, "active": tf == timeframe,
                 "url": f"?symbol={symbol}&timeframe={tf}&source={source}&theme={theme}{keep}"} for tf in TIMEFRAMES]
    return render(request, "widgets/chart.html", {
        "config": config, "theme": theme, "symbol": symbol, "timeframe": timeframe, "source_name": display_name(source),
        "switcher": switcher, "cards": cards,
    })


def depth(request):
    try:
        theme = _theme(request)
        symbol = normalize_symbols(request.GET.get("symbol", "BTC"), 1)[0]
        source = resolve_source(request.GET.get("source") or None, settings.EXCHANGES, composite=True, default="composite")
        levels = parse_int(request.GET.get("depth"), "depth", default=50, lo=5, hi=100)
        book = order_book(source, symbol, levels)
    except (MarketError, ExchangeError) as exc:
        return _error(request, exc)
    config = {**_common(theme), "symbol": symbol, "source": source, "depth": levels, "book": book}
    name = "all exchanges" if source == "composite" else display_name(source)
    return render(request, "widgets/depth.html", {"config": config, "theme": theme, "symbol": symbol, "source_name": name})


def gallery(request):
    tracked = selectors.tracked_by_source()
    symbols = sorted({s for syms in tracked.values() for s in syms})
    config = {
        "origin": request.build_absolute_uri("/").rstrip("/"),
        "prices_path": reverse("widget-prices"), "chart_path": reverse("widget-chart"), "depth_path": reverse("widget-depth"),
        "sources": settings.EXCHANGES, "symbols": symbols, "timeframes": list(TIMEFRAMES),
    }
    return render(request, "widgets/gallery.html", {
        "config": config, "theme": "dark", "symbols": symbols, "sources": [(s, display_name(s)) for s in settings.EXCHANGES],
        "timeframes": list(TIMEFRAMES), "indicators": GALLERY_INDICATORS,
    })


urlpatterns = [
    path("", gallery, name="widget-gallery"),
    path("prices/", prices, name="widget-prices"),
    path("chart/", chart, name="widget-chart"),
    path("depth/", depth, name="widget-depth"),
]
