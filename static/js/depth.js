/* Market depth: cumulative bid and ask quantities by price (lightweight-charts' price-scaled
 * chart), live over /ws (the book channel), polling the REST API as fallback. */
(function () {
  "use strict";
  var config = window.cryptositeConfig();
  var LC = window.LightweightCharts;
  var colors = window.cryptositeChartColors(config.theme);
  var container = document.getElementById("depth");
  var status = document.getElementById("depth-status");
  var chart = LC.createOptionsChart(container, {
    autoSize: true,
    layout: { background: { color: colors.background }, textColor: colors.text },
    grid: { vertLines: { color: colors.grid }, horzLines: { color: colors.grid } }
  });
  function area(color) {
    return chart.addSeries(LC.AreaSeries, { lineColor: color, topColor: color + "66", bottomColor: color + "11",
      lineWidth: 2, lineType: 1, priceLineVisible: false, lastValueVisible: false });
  }
  var bidSeries = area(colors.up), askSeries = area(colors.down);

  // Cumulative quantity from the best level outwards; x (the price) ascending, as the chart wants.
  function cumulative(levels, descending) {
    var total = 0, points = levels.map(function (level) {
      total += parseFloat(level[1]);
      return { time: parseFloat(level[0]), value: total };
    });
    return descending ? points.reverse() : points;
  }
  function draw(book) {
    var bids = cumulative(book.bids, true), asks = cumulative(book.asks, false);
    bidSeries.setData(bids);
    askSeries.setData(asks);
    document.getElementById("depth-mid").textContent = book.mid === null ? "–" : window.cryptositeFormat.price(book.mid);
    document.getElementById("depth-spread").textContent = book.spread === null ? "–" : window.cryptositeFormat.price(book.spread);
    var body = document.getElementById("depth-bands");
    body.replaceChildren.apply(body, Object.keys(book.depth_within_pct).map(function (pct) {
      var band = book.depth_within_pct[pct], row = document.createElement("tr");
      [["th", pct + "%", ""], ["td", band.bid === null ? "beyond the fetched book" : band.bid, "bid"],
       ["td", band.ask === null ? "beyond the fetched book" : band.ask, "ask"]].forEach(function (cell) {
        var el = document.createElement(cell[0]);
        el.textContent = cell[1];
        if (cell[2]) el.className = cell[2]; else el.scope = "row";
        row.appendChild(el);
      });
      return row;
    }));
    container.dataset.levels = String(book.bids.length + book.asks.length);
    container.dataset.mid = String(book.mid);
  }
  draw(config.book);
  chart.timeScale().fitContent();

  function resync() {
    var url = "/api/market/orderbook?symbol=" + encodeURIComponent(config.symbol) + "&source=" + config.source + "&depth=" + config.depth;
    return fetch(url).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (book) { if (book) { draw(book); container.dataset.lastUpdate = String(Date.now()); } }).catch(function () {});
  }
  var stream = new window.CryptoStream({
    onMessage: function (m) {
      if (m.type === "book" && m.symbol === config.symbol && m.source === config.source) {
        draw(m);
        container.dataset.lastUpdate = String(Date.now());
      }
    },
    onStatus: function (state) { status.textContent = state === "open" ? "Live" : "Reconnecting…"; },
    onResync: resync
  });
  stream.subscribe({ symbol: config.symbol, source: config.source, channel: "book", depth: config.depth });
  stream.pollWhileDown(resync, config.poll_interval_ms, function () { status.textContent = "Polling"; });
})();
