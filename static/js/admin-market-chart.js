/* The small chart of a tracked market's recent candles on its admin page. */
(function () {
  "use strict";
  var el = document.getElementById("market-chart");
  if (!el || !window.LightweightCharts) return;
  el.style.height = "260px";
  var LC = window.LightweightCharts;
  var chart = LC.createChart(el, { autoSize: true, timeScale: { timeVisible: true } });
  var series = chart.addSeries(LC.CandlestickSeries, {});
  series.setData(JSON.parse(el.dataset.candles).map(function (c) {
    return { time: c.timestamp / 1000, open: c.open, high: c.high, low: c.low, close: c.close };
  }));
  chart.timeScale().fitContent();
})();
