/* Widget gallery: live previews and copy-paste iframe snippets for the chosen options. */
(function () {
  "use strict";
  var config = window.cryptositeConfig();
  var form = document.getElementById("options");

  function query(widget) {
    var data = new FormData(form);
    var params = new URLSearchParams();
    if (widget === "prices") {
      var symbols = data.getAll("symbols");
      if (symbols.length) params.set("symbols", symbols.join(","));
      if (data.get("source")) params.set("source", data.get("source"));
    } else if (widget === "depth") {
      params.set("symbol", data.get("symbol"));
      params.set("source", data.get("source") || "composite");
    } else {
      params.set("symbol", data.get("symbol"));
      params.set("timeframe", data.get("timeframe"));
      if (data.get("source")) params.set("source", data.get("source"));
      var indicators = data.getAll("indicators");
      if (indicators.length) params.set("indicators", indicators.join(","));
    }
    params.set("theme", data.get("theme"));
    return params.toString();
  }

  function refresh() {
    document.querySelectorAll(".gallery-item").forEach(function (item) {
      var widget = item.dataset.widget;
      var path = { prices: config.prices_path, chart: config.chart_path, depth: config.depth_path }[widget];
      var url = config.origin + path + "?" + query(widget);
      var height = { prices: 360, depth: 520, chart: query(widget).indexOf("indicators=") >= 0 ? 820 : 640 }[widget];
      var title = { prices: "cryptosite live prices", chart: "cryptosite live chart", depth: "cryptosite market depth" }[widget];
      item.querySelector(".preview").src = url;
      item.querySelector(".snippet").value =
        '<iframe src="' + url + '" width="100%" height="' + height + '" style="border:0" title="' + title + '" loading="lazy"></iframe>';
    });
  }

  form.addEventListener("change", refresh);
  document.querySelectorAll(".copy").forEach(function (button) {
    button.addEventListener("click", function () {
      var text = button.parentNode.querySelector(".snippet");
      text.select();
      var done = function () { button.textContent = "Copied"; window.setTimeout(function () { button.textContent = "Copy snippet"; }, 1500); };
      if (navigator.clipboard) navigator.clipboard.writeText(text.value).then(done, done); else { document.execCommand("copy"); done(); }
    });
  });
  refresh();
})();
