/* Candlestick chart with volume (lightweight-charts from npm) and the per-coin line cards,
 * live over /ws (ohlc channel and price updates), polling the REST API as fallback. */
(function () {
  "use strict";
  var config = window.cryptositeConfig();
  var LC = window.LightweightCharts;
  var colors = window.cryptositeChartColors(config.theme);
  var dark = colors.dark;
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
    if (list.length) lastTime = list[list.length - 1].timestamp / 1000;
  }
  var lastTime = 0;  // the chart takes no update older than its newest point
  function update(c) {
    if (c.timestamp / 1000 < lastTime) return;
    lastTime = c.timestamp / 1000;
    candles.update(bar(c));
    volume.update(vol(c));
    container.dataset.lastUpdate = String(Date.now());
    container.dataset.lastClose = String(c.close);
  }
  // Indicators (?indicators=sma:20,bbands:20:2,rsi:14,macd:12:26:9): averages, bands and VWAP on
  // the price pane; RSI, MACD and ATR each in a pane of its own; live with every candle update.
  var overlays = {};
  var palette = { sma: ["#f5a623", "#ffca28"], ema: ["#ab47bc", "#66bb6a"], bbands: ["#7e57c2", "#26c6da"],
    vwap: ["#ff7043"], rsi: ["#ec407a"], atr: ["#8d6e63"] };
  var used = {};
  var onPrice = ["sma", "ema", "bbands", "vwap"];
  var panes = {};
  config.indicators.keys.forEach(function (key, i) {
    var name = key.split("_")[0];
    var pane = onPrice.indexOf(name) >= 0 ? 0 : (panes[name] = panes[name] || Object.keys(panes).length + 1);
    var colours = palette[name] || ["#90a4ae"];
    var color = colours[(used[name] = (used[name] || 0) + 1) - 1] || colours[0];
    function line(c, width, title) {
      return chart.addSeries(LC.LineSeries, { color: c, lineWidth: width || 2, priceLineVisible: false,
        lastValueVisible: pane > 0, crosshairMarkerVisible: false, title: title || "" }, pane);
    }
    if (name === "bbands") {
      overlays[key] = { series: [line(color, 1), line(color, 1, key), line(color, 1)], pick: function (v) { return [v.upper, v.middle, v.lower]; } };
    } else if (name === "macd") {
      var hist = chart.addSeries(LC.HistogramSeries, { priceLineVisible: false, lastValueVisible: false }, pane);
      overlays[key] = { series: [line("#29b6f6"), line("#f5a623"), hist], pick: function (v) { return [v.macd, v.signal, v.hist]; } };
    } else {
      overlays[key] = { series: [line(color, 2, pane ? "" : key)], pick: function (v) { return [v]; } };
      if (name === "rsi") {
        [70, 30].forEach(function (level) {
          overlays[key].series[0].createPriceLine({ price: level, color: colors.grid, lineStyle: 2, axisLabelVisible: false });
        });
      }
    }
  });
  var paneCount = Object.keys(panes).length;
  if (paneCount) {
    container.dataset.panes = String(paneCount);
    container.style.setProperty("--panes", String(paneCount));
    // The price pane keeps most of the height; each indicator pane gets a share of its own.
    chart.panes().forEach(function (p, i) { p.setStretchFactor(i === 0 ? 3 : 1); });
  }
  function overlayPoint(series, index, time, value) {
    if (value === null || value === undefined) return null;
    if (index === 2 && series.length === 3 && series[2].seriesType() === "Histogram") {
      return { time: time, value: value, color: value >= 0 ? colors.up + "aa" : colors.down + "aa" };
    }
    return { time: time, value: value };
  }
  function drawOverlays(rows) {
    Object.keys(overlays).forEach(function (key) {
      var o = overlays[key];
      o.series.forEach(function (series, j) {
        series.setData(rows.filter(function (r) { return r[key] !== null; }).map(function (r) {
          return overlayPoint(o.series, j, r.timestamp / 1000, o.pick(r[key])[j]);
        }).filter(Boolean));
      });
    });
    container.dataset.indicatorRows = String(rows.length);
  }
  function updateOverlays(time, values) {
    if (!values || time < lastTime) return;
    Object.keys(overlays).forEach(function (key) {
      if (values[key] === null || values[key] === undefined) return;
      var o = overlays[key];
      o.pick(values[key]).forEach(function (value, j) {
        var p = overlayPoint(o.series, j, time, value);
        if (p) o.series[j].update(p);
      });
    });
    container.dataset.indicatorUpdate = String(Date.now());
  }

  draw(config.candles);
  drawOverlays(config.indicators.rows);
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
    var common = "symbol=" + encodeURIComponent(config.symbol) + "&timeframe=" + config.timeframe +
      "&source=" + config.source + "&limit=3";
    var candlesDone = fetch("/api/market/ohlc?" + common).then(function (r) { return r.ok ? r.json() : { ohlc: [] }; })
      .then(function (body) { body.ohlc.forEach(update); }).catch(function () {});
    if (!config.indicators.spec) return candlesDone;
    return candlesDone.then(function () {
      return fetch("/api/market/indicators?" + common + "&indicators=" + encodeURIComponent(config.indicators.spec));
    }).then(function (r) { return r.ok ? r.json() : { rows: [] }; })
      .then(function (body) { body.rows.forEach(function (row) { updateOverlays(row.timestamp / 1000, row); }); })
      .catch(function () {});
  }

  var stream = new window.CryptoStream({
    onMessage: function (m) {
      if (m.type === "ohlc_update" && m.symbol === config.symbol && m.timeframe === config.timeframe && m.source === config.source) {
        update(m.candle);
        updateOverlays(m.candle.timestamp / 1000, m.indicators);
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
  var candleChannel = { symbol: config.symbol, source: config.source, channel: "ohlc", timeframe: config.timeframe };
  if (config.indicators.spec) candleChannel.indicators = config.indicators.spec;
  stream.subscribe(candleChannel);
  config.cards.forEach(function (c) { stream.subscribe({ symbol: c.symbol, source: c.source }); });

  stream.pollWhileDown(resync, config.poll_interval_ms, function () { status.textContent = "Polling"; });
})();
