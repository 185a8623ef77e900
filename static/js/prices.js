/* Price board: server-rendered cards kept live from /ws, with polling of /prices as fallback. */
(function () {
  "use strict";
  var config = window.cryptositeConfig();
  var fmt = window.cryptositeFormat;
  var status = document.getElementById("board-status");
  var cards = {};
  document.querySelectorAll(".card[data-symbol]").forEach(function (card) {
    cards[card.dataset.source + ":" + card.dataset.symbol] = card;
  });

  function render(card, entry) {
    var price = card.querySelector('[data-field="price"]');
    var change = card.querySelector('[data-field="change"]');
    var time = card.querySelector('[data-field="time"]');
    if (entry.price !== undefined) price.textContent = fmt.price(entry.price);
    if (entry.change_pct !== undefined) {
      change.textContent = fmt.change(entry.change_pct);
      change.classList.toggle("is-up", entry.change_pct > 0);
      change.classList.toggle("is-down", entry.change_pct < 0);
    }
    if (entry.iso) {
      time.dateTime = entry.iso;
      time.textContent = fmt.time(entry.iso);
    }
    card.dataset.received = String(Date.now());
    card.classList.add("is-flash");
    window.setTimeout(function () { card.classList.remove("is-flash"); }, 600);
    refreshStale();
  }

  function refreshStale() {
    Object.keys(cards).forEach(function (key) {
      var card = cards[key];
      var received = Number(card.dataset.received || 0);
      var stale = !received || Date.now() - received > config.stale_after_ms[card.dataset.source];
      card.classList.toggle("is-stale", stale);
      card.querySelector('[data-field="stale"]').hidden = !stale;
    });
  }

  // First paint came from the server: format it like the live updates.
  Object.keys(cards).forEach(function (key) {
    var card = cards[key];
    var price = card.querySelector('[data-field="price"]');
    var time = card.querySelector('[data-field="time"]');
    var change = card.querySelector('[data-field="change"]');
    if (price.textContent !== "–") price.textContent = fmt.price(Number(price.textContent));
    if (time.dateTime) time.textContent = fmt.time(time.dateTime);
    if (change.textContent !== "–") change.textContent = fmt.change(parseFloat(change.textContent));
  });

  function poll() {
    return fetch("/prices", { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : {}; })
      .then(function (data) {
        Object.keys(data).forEach(function (sourceName) {
          Object.keys(data[sourceName]).forEach(function (symbol) {
            var entry = data[sourceName][symbol];
            var card = cards[sourceName.toLowerCase() + ":" + symbol];
            if (card && entry.timestamp !== card.querySelector('[data-field="time"]').dateTime) {
              render(card, { price: entry.price, change_pct: entry.change_pct, iso: entry.timestamp });
            }
          });
        });
      })
      .catch(function () {});
  }

  var stream = new window.CryptoStream({
    onMessage: function (m) {
      if (m.type !== "price_update") return;
      var card = cards[m.source + ":" + m.symbol];
      if (card) render(card, { price: m.price, iso: new Date(m.timestamp).toISOString() });
    },
    onStatus: function (state) { status.textContent = state === "open" ? "Live" : "Reconnecting…"; },
    onResync: poll
  });
  config.markets.forEach(function (m) { stream.subscribe({ symbol: m.symbol, source: m.source }); });

  // Fallback: while the WebSocket is down, poll the REST endpoint at the poll interval.
  stream.pollWhileDown(poll, config.poll_interval_ms, function () { status.textContent = "Polling"; });
  window.setInterval(refreshStale, 1000);
})();
