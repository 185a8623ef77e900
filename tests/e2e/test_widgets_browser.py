"""The widgets in headless Chromium (Debian's) against the real stack in demo mode."""

import shutil
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cryptosite.stack import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

if not shutil.which("chromium"):
    pytest.skip("Debian's chromium is not installed (.ci/run installs it)", allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield instance
        instance.close()


class Watched:
    """A page with every request and console error recorded."""

    def __init__(self, browser, base: str, **context):
        self.context = browser.new_context(**context)
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.base = base

    def foreign(self) -> list[str]:
        return [u for u in self.requests if not u.startswith((self.base, self.base.replace("http", "ws"), "data:"))]

    def close(self):
        self.context.close()


def card_time(page, source: str, symbol: str) -> str:
    return page.get_attribute(f'.card[data-source="{source}"][data-symbol="{symbol}"] [data-field="time"]', "datetime")


def test_the_price_board_shows_prices_and_updates_without_a_reload(stack, browser):
    w = Watched(browser, stack.base)
    w.page.goto(f"{stack.base}/widgets/prices/")
    assert w.page.locator(".card").count() == 8
    first = card_time(w.page, "binance", "BTC")
    assert first
    w.page.wait_for_function(
        "t => document.querySelector('.card[data-source=\"binance\"][data-symbol=\"BTC\"] [data-field=\"time\"]').dateTime !== t",
        arg=first, timeout=10_000)
    assert w.page.locator('.card[data-symbol="BTC"] [data-field="price"]').first.inner_text().startswith("$")
    assert w.foreign() == [] and w.errors == []
    w.close()


def test_the_chart_draws_candles_and_updates_the_newest(stack, browser):
    w = Watched(browser, stack.base)
    w.page.goto(f"{stack.base}/widgets/chart/?symbol=BTC&timeframe=1m")
    assert int(w.page.get_attribute("#chart", "data-candles")) >= 50
    assert w.page.locator("#chart canvas").count() >= 1
    w.page.wait_for_selector("#chart[data-last-update]", state="attached", timeout=15_000)
    assert w.page.locator(".line-card").count() == 8
    w.page.click("text=5m")
    w.page.wait_for_url("**timeframe=5m**")
    assert w.page.get_attribute('.tf-switcher a[aria-current="page"]', "href").count("timeframe=5m") == 1
    assert w.foreign() == [] and w.errors == []
    w.close()


# Pixels of one colour across the chart's canvases (the overlays' colours are the chart's own).
COLOUR_PIXELS = """([r, g, b]) => {
  let n = 0;
  for (const canvas of document.querySelectorAll('#chart canvas')) {
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < data.length; i += 4) {
      if (Math.abs(data[i] - r) < 12 && Math.abs(data[i + 1] - g) < 12 && Math.abs(data[i + 2] - b) < 12) n++;
    }
  }
  return n;
}"""
SMA_ORANGE, MACD_BLUE = (245, 166, 35), (41, 182, 246)


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_the_chart_draws_indicator_overlays_and_panes_and_keeps_them_live(stack, browser, theme, tmp_path):
    w = Watched(browser, stack.base, viewport={"width": 1000, "height": 1000})
    plain = f"{stack.base}/widgets/chart/?symbol=BTC&timeframe=1m&theme={theme}"
    w.page.goto(plain)
    w.page.wait_for_timeout(300)
    assert w.page.evaluate(COLOUR_PIXELS, list(SMA_ORANGE)) == 0 and w.page.get_attribute("#chart", "data-panes") is None
    w.page.goto(plain + "&indicators=sma:20,bbands:20:2,rsi:14,macd")
    assert w.page.get_attribute("#chart", "data-panes") == "2"  # RSI and MACD below the price pane
    assert int(w.page.get_attribute("#chart", "data-indicator-rows")) >= 50
    w.page.wait_for_timeout(300)
    assert w.page.evaluate(COLOUR_PIXELS, list(SMA_ORANGE)) > 200  # the SMA line on the price pane
    assert w.page.evaluate(COLOUR_PIXELS, list(MACD_BLUE)) > 100  # the MACD line in its pane
    w.page.locator("#chart").screenshot(path=str(tmp_path / f"chart-indicators-{theme}.png"))
    # Live: a candle update over /ws arrives with the indicators' values and moves the overlays.
    w.page.wait_for_selector("#chart[data-indicator-update]", state="attached", timeout=20_000)
    # The timeframe switcher keeps the indicators.
    assert "indicators=sma:20,bbands:20:2,rsi:14,macd:12:26:9" in w.page.get_attribute('.tf-switcher a >> nth=1', "href")
    assert w.foreign() == [] and w.errors == []
    w.close()


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_the_depth_widget_draws_both_sides_and_stays_live(stack, browser, theme, tmp_path):
    w = Watched(browser, stack.base, viewport={"width": 900, "height": 700})
    w.page.goto(f"{stack.base}/widgets/depth/?symbol=BTC&source=composite&theme={theme}")
    assert int(w.page.get_attribute("#depth", "data-levels")) == 100  # 50 a side
    assert w.page.locator("#depth-bands tr").count() == 3
    assert w.page.inner_text("#depth-mid").startswith("$")
    w.page.wait_for_timeout(300)
    up, down = ((38, 166, 154), (239, 83, 80)) if theme == "dark" else ((10, 125, 111), (198, 40, 40))
    pixels = """([r, g, b]) => { let n = 0; for (const c of document.querySelectorAll('#depth canvas')) {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i]-r) < 12 && Math.abs(d[i+1]-g) < 12 && Math.abs(d[i+2]-b) < 12) n++; }
      return n; }"""
    assert w.page.evaluate(pixels, list(up)) > 200 and w.page.evaluate(pixels, list(down)) > 200  # bid and ask curves
    w.page.locator("#depth").screenshot(path=str(tmp_path / f"depth-{theme}.png"))
    # Live: the book is refreshed while watched and each change arrives over /ws.
    w.page.wait_for_selector("#depth[data-last-update]", state="attached", timeout=20_000)
    assert w.foreign() == [] and w.errors == []
    w.close()


def test_the_gallery_offers_indicators_for_the_chart_snippet(stack, browser):
    w = Watched(browser, stack.base)
    w.page.goto(f"{stack.base}/widgets/")
    w.page.check('input[name="indicators"][value="rsi:14"]')
    w.page.check('input[name="indicators"][value="sma:20"]')
    snippet = w.page.locator('.gallery-item[data-widget="chart"] .snippet').input_value()
    assert "indicators=sma%3A20%2Crsi%3A14" in snippet and 'height="820"' in snippet
    assert w.errors == []
    w.close()


@pytest.mark.parametrize("path", ["/widgets/prices/", "/widgets/chart/?symbol=ETH", "/widgets/depth/?symbol=ETH", "/widgets/"])
def test_no_horizontal_overflow_on_a_360px_phone(stack, browser, path):
    w = Watched(browser, stack.base, viewport={"width": 360, "height": 740})
    w.page.goto(stack.base + path)
    w.page.wait_for_timeout(500)
    assert w.page.evaluate("document.documentElement.scrollWidth") <= 360
    assert w.errors == []
    w.close()


def test_light_theme_and_framing_headers(stack, browser):
    w = Watched(browser, stack.base)
    response = w.page.goto(f"{stack.base}/widgets/prices/?theme=light")
    assert w.page.get_attribute("html", "data-theme") == "light"
    assert "frame-ancestors *" in response.headers["content-security-policy"]
    assert "x-frame-options" not in response.headers
    admin = w.page.goto(f"{stack.base}/admin/login/")
    assert admin.headers["x-frame-options"] == "DENY"
    w.close()


def test_a_snippet_from_the_gallery_works_in_a_page_on_another_origin(stack, browser, tmp_path):
    w = Watched(browser, stack.base)
    w.page.goto(f"{stack.base}/widgets/")
    snippet = w.page.input_value('[data-widget="prices"] .snippet')
    assert snippet.startswith("<iframe") and "/widgets/prices/" in snippet
    page = f'<!doctype html><title>my site</title><link rel="icon" href="data:,"><h1>My dashboard</h1>{snippet}'
    (tmp_path / "index.html").write_text(page)
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), partial(SimpleHTTPRequestHandler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        w.page.goto(f"http://127.0.0.1:{port}/index.html")
        frame = w.page.frame_locator("iframe")
        frame.locator('.card[data-symbol="BTC"]').first.wait_for(timeout=10_000)
        before = frame.locator('.card[data-source="binance"][data-symbol="BTC"] [data-field="time"]').get_attribute("datetime")
        deadline = time.monotonic() + 10
        while frame.locator('.card[data-source="binance"][data-symbol="BTC"] [data-field="time"]').get_attribute("datetime") == before:
            assert time.monotonic() < deadline, "embedded board did not update"
            time.sleep(0.3)
    finally:
        server.shutdown()
    assert w.errors == []
    w.close()


def test_the_board_recovers_after_the_server_restarts(stack, browser):
    w = Watched(browser, stack.base)
    w.page.goto(f"{stack.base}/widgets/prices/")
    w.page.wait_for_function("() => document.getElementById('board-status').textContent === 'Live'", timeout=10_000)
    restarted = stack.restart()
    try:
        restarted.wait_healthy()
        before = card_time(w.page, "binance", "BTC")
        w.page.wait_for_function("() => document.getElementById('board-status').textContent === 'Live'", timeout=60_000)  # backoff caps at 30 s
        w.page.wait_for_function(
            "t => document.querySelector('.card[data-source=\"binance\"][data-symbol=\"BTC\"] [data-field=\"time\"]').dateTime !== t",
            arg=before, timeout=15_000)
    finally:
        restarted.stop()
        w.close()
