/* cryptosite stream client: one WebSocket to /ws with auto-reconnect (exponential back-off
 * with jitter), resubscription after every reconnect, and a resync callback whenever messages
 * may have been missed (a reconnect, or a gap in the server's `seq`). */
(function (global) {
  "use strict";

  function defaultUrl() {
    var scheme = global.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + global.location.host + "/ws";
  }

  function CryptoStream(options) {
    options = options || {};
    this.url = options.url || defaultUrl();
    this.onMessage = options.onMessage || function () {};
    this.onStatus = options.onStatus || function () {};
    this.onResync = options.onResync || function () {};
    this.maxDelay = options.maxDelay || 30000;
    this.subscriptions = new Map();
    this.attempt = 0;
    this.lastSeq = null;
    this.everOpened = false;
    this.closedAt = null;
    this.connect();
  }

  CryptoStream.prototype.connect = function () {
    var self = this;
    var ws;
    try {
      ws = new global.WebSocket(this.url);
    } catch (err) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = function () {
      self.attempt = 0;
      self.lastSeq = null;
      self.closedAt = null;
      self.subscriptions.forEach(function (message) { ws.send(JSON.stringify(message)); });
      self.onStatus("open");
      if (self.everOpened) self.onResync("reconnected");
      self.everOpened = true;
    };
    ws.onmessage = function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (err) { return; }
      if (typeof message.seq === "number") {
        if (self.lastSeq !== null && message.seq !== self.lastSeq + 1) self.onResync("gap");
        self.lastSeq = message.seq;
      }
      self.onMessage(message);
    };
    ws.onclose = function () {
      if (self.closedAt === null) self.closedAt = Date.now();
      self.onStatus("closed");
      self.scheduleReconnect();
    };
    ws.onerror = function () { /* onclose follows */ };
  };

  CryptoStream.prototype.scheduleReconnect = function () {
    var base = Math.min(this.maxDelay, 500 * Math.pow(2, this.attempt));
    var delay = base / 2 + Math.random() * base / 2;  // jitter: spread reconnects of many clients
    this.attempt += 1;
    var self = this;
    global.setTimeout(function () { self.connect(); }, delay);
  };

  CryptoStream.prototype.isOpen = function () {
    return !!this.ws && this.ws.readyState === global.WebSocket.OPEN;
  };

  /* Milliseconds the stream has been down (0 while open). */
  CryptoStream.prototype.downFor = function () {
    return this.closedAt === null ? 0 : Date.now() - this.closedAt;
  };

  /* The fallback of every widget: while the stream has been down for more than two seconds,
   * call `poll` (a REST refresh) every `intervalMs`, after `onPolling`. */
  CryptoStream.prototype.pollWhileDown = function (poll, intervalMs, onPolling) {
    var self = this;
    global.setInterval(function () {
      if (self.downFor() > 2000) {
        if (onPolling) onPolling();
        poll();
      }
    }, Math.max(2000, intervalMs));
  };

  CryptoStream.prototype.subscribe = function (message) {
    var full = Object.assign({ type: "subscribe" }, message);
    this.subscriptions.set(JSON.stringify(full), full);
    if (this.isOpen()) this.ws.send(JSON.stringify(full));
  };

  global.CryptoStream = CryptoStream;

  global.cryptositeConfig = function () {
    var node = global.document.getElementById("widget-config");
    return node ? JSON.parse(node.textContent) : {};
  };

  // The charts' colours per theme (the same values as widgets.css), for every chart widget.
  global.cryptositeChartColors = function (theme) {
    var dark = theme !== "light";
    return {
      dark: dark, text: dark ? "#d1d4dc" : "#1f2328", background: dark ? "#131722" : "#ffffff",
      grid: dark ? "#222736" : "#eef0f3", up: dark ? "#26a69a" : "#0a7d6f", down: dark ? "#ef5350" : "#c62828"
    };
  };

  global.cryptositeFormat = {
    price: function (value) {
      if (value === null || value === undefined) return "–";
      var digits = value >= 1000 ? 2 : value >= 1 ? 4 : 8;
      return "$" + Number(value).toLocaleString("en-US", { minimumFractionDigits: Math.min(2, digits), maximumFractionDigits: digits });
    },
    change: function (value) {
      if (value === null || value === undefined) return "–";
      return (value > 0 ? "+" : "") + Number(value).toFixed(2) + "%";
    },
    time: function (iso) {
      if (!iso) return "no data yet";
      var d = new Date(iso);
      return isNaN(d) ? iso : d.toISOString().slice(11, 19) + " UTC";
    }
  };
})(window);
