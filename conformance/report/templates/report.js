(function () {
  "use strict";
  // Filters are an enhancement: without this script every row and every failure is shown.
  var form = document.getElementById("filters");
  if (!form) { return; }
  form.hidden = false;
  var items = Array.prototype.slice.call(document.querySelectorAll("[data-status][data-area]"));
  var rows = items.filter(function (el) { return el.tagName === "TR"; });
  var boxes = Array.prototype.slice.call(form.querySelectorAll("input[name=status]"));
  var area = form.querySelector("select[name=area]");
  var search = form.querySelector("input[name=q]");
  var shown = document.getElementById("shown");
  var empty = document.getElementById("no-rows");

  function apply() {
    var statuses = boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
    var text = search.value.trim().toLowerCase();
    var visible = 0;
    items.forEach(function (el) {
      var ok = statuses.indexOf(el.getAttribute("data-status")) >= 0 &&
        (area.value === "" || el.getAttribute("data-area") === area.value) &&
        (text === "" || (el.getAttribute("data-search") || "").indexOf(text) >= 0);
      el.hidden = !ok;
      if (ok && el.tagName === "TR") { visible += 1; }
    });
    shown.textContent = visible + " of " + rows.length + " requirements shown";
    empty.hidden = visible !== 0;
  }

  function only(values) {
    boxes.forEach(function (b) { b.checked = values === null || values.indexOf(b.value) >= 0; });
    apply();
  }

  form.addEventListener("change", apply);
  form.addEventListener("input", apply);
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  document.getElementById("show-all").addEventListener("click", function () {
    area.value = "";
    search.value = "";
    only(null);
  });
  document.getElementById("show-problems").addEventListener("click", function () {
    only(["failed", "error", "warning"]);
  });
  Array.prototype.slice.call(document.querySelectorAll("[data-only-status]")).forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      area.value = link.getAttribute("data-only-area") || "";
      only([link.getAttribute("data-only-status")]);
      document.getElementById("requirements").scrollIntoView();
    });
  });
  // Printing shows everything, whatever is filtered or folded on screen.
  window.addEventListener("beforeprint", function () {
    items.forEach(function (el) { el.hidden = false; });
    Array.prototype.slice.call(document.querySelectorAll("details")).forEach(function (d) { d.open = true; });
  });
  window.addEventListener("afterprint", apply);
  apply();
}());
