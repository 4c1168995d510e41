/* Page behaviour that needs no server round trip: live deadline countdowns, j/k/Enter in the queue,
   select-all for bulk actions, and photo previews with the same size and type checks the server makes. */
(function () {
  "use strict";
  var zh = (document.documentElement.lang || "").indexOf("zh") === 0;

  function span(seconds) {
    var s = Math.abs(seconds), d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d) return zh ? d + " 天 " + h + " 小时" : d + " d " + h + " h";
    if (h) return zh ? h + " 小时 " + m + " 分钟" : h + " h " + m + " min";
    return zh ? m + " 分钟" : m + " min";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      var left = (Date.parse(el.getAttribute("data-deadline")) - now) / 1000;
      var cls = left < 0 ? "due-over" : left < 14400 ? "due-soon" : left < 86400 ? "due-today" : "due-later";
      el.className = "due " + cls;
      el.textContent = left < 0 ? (zh ? "已超时 " + span(left) : "overdue by " + span(left))
                                : (zh ? "剩余 " + span(left) : span(left) + " left");
    });
  }

  // SLA countdowns: the server chose the colour from the clock's state; once the moment passes here the
  // clock is breached whatever it was.
  function tickSla() {
    var now = Date.now();
    document.querySelectorAll("[data-sla-due]").forEach(function (el) {
      var left = (Date.parse(el.getAttribute("data-sla-due")) - now) / 1000;
      var out = el.classList.contains("sla-left") ? el : el.querySelector(".sla-left");
      if (out) out.textContent = left < 0 ? (zh ? "已超时 " + span(left) : "overdue by " + span(left))
                                          : (zh ? "剩余 " + span(left) : span(left) + " left");
      var badge = el.classList.contains("sla") ? el : el.closest(".sla");
      if (left < 0 && badge && !badge.classList.contains("sla-breached")) {
        badge.classList.remove("sla-running", "sla-warning");
        badge.classList.add("sla-breached");
      }
    });
  }

  function queueRows() { return Array.prototype.slice.call(document.querySelectorAll("tr[data-href]")); }

  function move(step) {
    var rows = queueRows(); if (!rows.length) return;
    var at = rows.findIndex(function (r) { return r.classList.contains("current"); });
    var next = Math.max(0, Math.min(rows.length - 1, at + step));
    if (at >= 0) rows[at].classList.remove("current");
    rows[next].classList.add("current");
    rows[next].setAttribute("aria-selected", "true");
    var link = rows[next].querySelector("a"); if (link) link.focus();
  }

  document.addEventListener("keydown", function (e) {
    var tag = (e.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || e.ctrlKey || e.metaKey || e.altKey) return;
    if (!queueRows().length) return;
    if (e.key === "j") { move(1); e.preventDefault(); }
    else if (e.key === "k") { move(-1); e.preventDefault(); }
    else if (e.key === "x") {
      var cur = document.querySelector("tr.current input[type=checkbox]"); if (cur) { cur.checked = !cur.checked; e.preventDefault(); }
    } else if (e.key === "Enter") {
      var row = document.querySelector("tr.current"); if (row && tag !== "a") { window.location = row.getAttribute("data-href"); }
    }
  });

  document.addEventListener("change", function (e) {
    var el = e.target;
    if (el.id === "select-all") {
      document.querySelectorAll("input[name=case_ids]").forEach(function (box) { box.checked = el.checked; });
    }
    if (el.type === "file" && el.hasAttribute("data-max-bytes")) {
      var max = parseInt(el.getAttribute("data-max-bytes"), 10), ok = ["image/jpeg", "image/png", "image/webp", "application/pdf"];
      var box = document.getElementById(el.getAttribute("data-preview")), problems = [];
      box.innerHTML = "";
      Array.prototype.forEach.call(el.files, function (file) {
        if (ok.indexOf(file.type) < 0) problems.push(file.name + (zh ? "：只接受 JPEG、PNG、WebP 和 PDF" : ": only JPEG, PNG, WebP and PDF"));
        else if (file.size > max) problems.push(file.name + (zh ? "：文件过大" : ": too large"));
        else if (file.type.indexOf("image/") === 0) {
          var img = document.createElement("img"); img.alt = file.name; img.src = URL.createObjectURL(file); box.appendChild(img);
        }
      });
      el.setCustomValidity(problems.join("; "));
      var out = document.getElementById(el.getAttribute("data-preview") + "-errors");
      if (out) out.textContent = problems.join("; ");
    }
  });

  // The queue refreshes its rows: keep the row the keyboard is on.
  var currentRow = null;
  document.addEventListener("htmx:beforeSwap", function (e) {
    if (e.detail.target && e.detail.target.id === "queue-rows") {
      var cur = document.querySelector("tr.current"); currentRow = cur ? cur.getAttribute("data-href") : null;
    }
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!currentRow) return;
    queueRows().forEach(function (r) { if (r.getAttribute("data-href") === currentRow) r.classList.add("current"); });
  });

  function both() { tick(); tickSla(); }
  document.addEventListener("DOMContentLoaded", function () { both(); setInterval(both, 30000); });
  document.addEventListener("htmx:afterSwap", both);
})();
