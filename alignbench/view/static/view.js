// alignbench view: keyboard navigation, column picker, remembered reviewer name, and the filters of the
// static copy. Plain browser JavaScript with no build step; it never inserts text from runs as HTML.
(function () {
  "use strict";

  function typing(el) {
    if (!el) return false;
    var tag = (el.tagName || "").toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || el.isContentEditable;
  }

  function go(selector) {
    var a = document.querySelector(selector);
    if (a && a.href) { window.location.assign(a.href); return true; }
    return false;
  }

  var body = document.body;
  var isQuestion = body.classList.contains("page-question");
  var isList = body.classList.contains("page-list");

  // -- leaderboard shown before the second loading phase ended: reload once it has ----------------
  if (document.getElementById("pending") && window.fetch) {
    var poll = function () {
      fetch("/api/ready", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (j) {
        if (j.ready) window.location.reload(); else window.setTimeout(poll, 300);
      }).catch(function () { window.setTimeout(poll, 1000); });
    };
    window.setTimeout(poll, 200);
  }

  // -- list rows: j/k select, Enter opens ----------------------------------------------------------
  var rows = isList ? Array.prototype.slice.call(document.querySelectorAll("#items tbody tr")) : [];
  var selected = -1;
  function visibleRows() { return rows.filter(function (r) { return !r.hidden && r.querySelector("a.qlink"); }); }
  function select(delta) {
    var vis = visibleRows();
    if (!vis.length) return;
    var cur = vis.indexOf(rows[selected]);
    var next = Math.max(0, Math.min(vis.length - 1, cur + delta));
    if (cur === -1) next = delta > 0 ? 0 : vis.length - 1;
    if (rows[selected]) rows[selected].classList.remove("selected");
    selected = rows.indexOf(vis[next]);
    vis[next].classList.add("selected");
    vis[next].scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) return;
    var key = ev.key;
    if (key === "/") {
      var box = document.getElementById("list-search") || document.getElementById("global-search");
      if (box) { ev.preventDefault(); box.focus(); box.select(); }
      return;
    }
    if (isQuestion) {
      if (key === "j" || key === "ArrowRight") { if (go("#next-link")) ev.preventDefault(); }
      else if (key === "k" || key === "ArrowLeft") { if (go("#prev-link")) ev.preventDefault(); }
      return;
    }
    if (isList) {
      if (key === "j") { ev.preventDefault(); select(1); }
      else if (key === "k") { ev.preventDefault(); select(-1); }
      else if (key === "Enter" && rows[selected]) { ev.preventDefault(); go("#items tr.selected a.qlink"); }
      else if (key === "ArrowRight") { if (go("nav.pager a[rel=next]")) ev.preventDefault(); }
      else if (key === "ArrowLeft") { if (go("nav.pager a[rel=prev]")) ev.preventDefault(); }
    }
  });

  // -- question page: the run in focus, column picker, reviewer name ------------------------------
  if (isQuestion) {
    var focus = document.querySelector(".col.focus");
    var columns = document.getElementById("columns");
    if (focus && columns) {
      window.scrollTo(0, 0);
      columns.scrollLeft = Math.max(0, focus.offsetLeft - columns.offsetLeft - 16);
    }
    Array.prototype.forEach.call(document.querySelectorAll(".turn-cols"), function (row) {
      var cell = row.querySelector(".tcell.focus");  // a dialogue: each turn's row shows the run in focus
      if (cell) row.scrollLeft = Math.max(0, cell.offsetLeft - row.offsetLeft - 16);
    });
    var picker = document.getElementById("colpick");
    var boxes = picker ? picker.querySelectorAll("input[data-col]") : [];
    var hiddenCols = [];
    try { hiddenCols = JSON.parse(localStorage.getItem("alignbench.hiddenCols") || "[]"); } catch (e) { hiddenCols = []; }
    function apply() {
      Array.prototype.forEach.call(boxes, function (box) {
        // a run's column, and on a dialogue its cell in every model turn's row
        var key = box.getAttribute("data-col");
        Array.prototype.forEach.call(document.querySelectorAll('.col[data-col="' + key + '"], .tcell[data-col="' + key + '"]'),
          function (el) { el.hidden = !box.checked; });
      });
    }
    if (boxes.length > 1) {
      picker.hidden = false;
      Array.prototype.forEach.call(boxes, function (box) {
        if (hiddenCols.indexOf(box.getAttribute("data-col")) >= 0) box.checked = false;
        box.addEventListener("change", function () {
          var off = [];
          Array.prototype.forEach.call(boxes, function (b) { if (!b.checked) off.push(b.getAttribute("data-col")); });
          try { localStorage.setItem("alignbench.hiddenCols", JSON.stringify(off)); } catch (e) { /* private mode */ }
          apply();
        });
      });
      apply();
    }
    var stored = null;
    try { stored = localStorage.getItem("alignbench.reviewer"); } catch (e) { stored = null; }
    Array.prototype.forEach.call(document.querySelectorAll("input.reviewer"), function (input) {
      if (stored) input.value = stored;
      input.addEventListener("change", function () {
        try { localStorage.setItem("alignbench.reviewer", input.value); } catch (e) { /* private mode */ }
        Array.prototype.forEach.call(document.querySelectorAll("input.reviewer"), function (other) { other.value = input.value; });
      });
    });
  }

  // -- filters: subcategories of the chosen category; the static copy filters rows in the page ------
  var form = document.getElementById("filters");
  if (form) {
    var cat = form.querySelector("select[name=category]");
    var sub = form.querySelector("select[name=subcategory]");
    var syncSubs = function () {
      Array.prototype.forEach.call(sub.options, function (opt) {
        var c = opt.getAttribute("data-category");
        opt.hidden = !!(c && cat.value && c !== cat.value);
      });
    };
    if (cat && sub) { cat.addEventListener("change", function () { sub.value = ""; syncSubs(); }); syncSubs(); }

    if (body.classList.contains("static")) {
      var norm = function (s) { return (s || "").normalize("NFKC").toLowerCase().replace(/\s+/g, " "); };
      var count = document.getElementById("count");
      var filterRows = function (ev) {
        if (ev) ev.preventDefault();
        var get = function (name) { var el = form.querySelector("[name=" + name + "]"); return el ? el.value : ""; };
        var run = get("run"), category = get("category"), subcategory = get("subcategory"), status = get("status"),
          reviewed = get("reviewed"), words = norm(get("q")).split(" ").filter(Boolean), shown = 0;
        rows.forEach(function (r) {
          var d = r.dataset;
          var ok = (!run || d.run === run) && (!category || d.category === category) &&
            (!subcategory || d.subcategory === subcategory) &&
            (!status || (status === "failed" ? d.status !== "ok" : d.status === status)) &&
            (!reviewed || d.reviewed === reviewed || (reviewed === "no" && d.reviewed === "stale"));
          if (ok && words.length) {
            var text = norm(r.textContent);
            ok = words.every(function (w) { return text.indexOf(w) >= 0; });
          }
          r.hidden = !ok;
          if (ok) shown += 1;
        });
        var sort = get("sort");
        var tbody = document.querySelector("#items tbody");
        var ordered = rows.slice();
        var score = function (r) { return r.dataset.score === "" ? null : parseFloat(r.dataset.score); };
        if (sort === "score" || sort === "-score") {
          var sign = sort === "score" ? 1 : -1;
          ordered.sort(function (a, b) {
            var x = score(a), y = score(b);
            if (x === null || y === null) return (x === null) - (y === null);
            return sign * (x - y);
          });
        }
        ordered.forEach(function (r) { tbody.appendChild(r); });
        rows = ordered;
        if (count) count.textContent = shown + " judgments";
      };
      form.addEventListener("submit", filterRows);
      form.addEventListener("change", filterRows);
    }
  }
})();
