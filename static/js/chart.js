/* Candlestick chart with volume (lightweight-charts from npm) and the per-coin line cards,
 * live over /ws (ohlc channel and price updates), polling the REST API as fallback. */
(function () {
  "use strict";
  var config = window.cryptositeConfig();
  var LC = window.LightweightCharts;
  var dark = config.theme !== "light";
  var colors = {
    text: dark ? "#d1d4dc" : "#1f2328", background: dark ? "#131722" : "#ffffff", grid: dark ? "#222736" : "#eef0f3",
    up: dark ? "#26a69a" : "#0a7d6f", down: dark ? "#ef5350" : "#c62828"
  };
  var status = document.getElementById("chart-status");
  var container = document.getElementById("chart");
  var chart = LC.createChart(container, {
    autoSize: true,
    layout: { background: { color: colors.background }, textColor: colors.text },
    grid: { vertLines: { color: colors.grid }, horzLines: { color: colors.grid } },
    timeScale: { timeVisible: config.timeframe.slice(-1) !== "d" && config.timeframe !== "1w", secondsVisible: false },
    rightPriceScale: { scaleMargins: { top: 0.1, bottom: 0.25 } }
  });
  var candles = chart.addSeries(LC.CandlestickSeries, {
    upColor: colors.up, downColor: colors.down, borderVisible: false, wickUpColor: colors.up, wickDownColor: colors.down
  });
  var volume = chart.addSeries(LC.HistogramSeries, { priceFormat: { type: "volume" }, priceScaleId: "" });
  volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });

  function bar(c) {
    return { time: c.timestamp / 1000, open: c.open, high: c.high, low: c.low, close: c.close };
  }
  function vol(c) {
    return { time: c.timestamp / 1000, value: c.volume, color: c.close >= c.open ? colors.up + "88" : colors.down + "88" };
  }
  function draw(list) {
    candles.setData(list.map(bar));
    volume.setData(list.map(vol));
  }
  function update(c) {
    candles.update(bar(c));
    volume.update(vol(c));
    container.dataset.lastUpdate = String(Date.now());
    container.dataset.lastClose = String(c.close);
  }
  draw(config.candles);
  container.dataset.candles = String(config.candles.length);
  chart.timeScale().fitContent();

  // Line cards: the last 30 prices of every tracked coin on every exchange.
  var lines = {};
  document.querySelectorAll(".line-card").forEach(function (card) {
    var data = config.cards.filter(function (c) { return c.source === card.dataset.source && c.symbol === card.dataset.symbol; })[0];
    var small = LC.createChart(card.querySelector(".line-chart"), {
      autoSize: true, handleScroll: false, handleScale: false,
      // The main chart above carries TradingView's attribution; the small cards do not repeat it.
      layout: { background: { color: colors.background }, textColor: colors.text, attributionLogo: false },
      grid: { vertLines: { visible: false }, horzLines: { color: colors.grid } },
      timeScale: { timeVisible: true, secondsVisible: true }
    });
    var series = small.addSeries(LC.LineSeries, { color: dark ? "#4fc3f7" : "#1565c0", lineWidth: 2 });
    var points = (data ? data.points : []).map(function (p) { return { time: Date.parse(p.timestamp) / 1000, value: p.price }; });
    series.setData(points);
    var key = card.dataset.source + ":" + card.dataset.symbol;
    lines[key] = { series: series, last: card.querySelector('[data-field="last"]'), lastTime: points.length ? points[points.length - 1].time : 0 };
    if (points.length) lines[key].last.textContent = window.cryptositeFormat.price(points[points.length - 1].value);
  });

  function resync() {
    var url = "/api/market/ohlc?symbol=" + encodeURIComponent(config.symbol) + "&timeframe=" + config.timeframe +
      "&source=" + config.source + "&limit=3";
    return fetch(url).then(function (r) { return r.ok ? r.json() : { ohlc: [] }; })
      .then(function (body) { body.ohlc.forEach(update); }).catch(function () {});
  }

  var stream = new window.CryptoStream({
    onMessage: function (m) {
      if (m.type === "ohlc_update" && m.symbol === config.symbol && m.timeframe === config.timeframe && m.source === config.source) {
        update(m.candle);
      } else if (m.type === "price_update") {
        var line = lines[m.source + ":" + m.symbol];
        var time = m.timestamp / 1000;
        if (line && time > line.lastTime) {
          line.series.update({ time: time, value: m.price });
          line.lastTime = time;
          line.last.textContent = window.cryptositeFormat.price(m.price);
        }
      }
    },
    onStatus: function (state) { status.textContent = state === "open" ? "Live" : "Reconnecting…"; },
    onResync: resync
  });
  stream.subscribe({ symbol: config.symbol, source: config.source, channel: "ohlc", timeframe: config.timeframe });
  config.cards.forEach(function (c) { stream.subscribe({ symbol: c.symbol, source: c.source }); });

  stream.pollWhileDown(resync, config.poll_interval_ms, function () { status.textContent = "Polling"; });
})();
