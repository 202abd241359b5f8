"use strict";
// The ping page without waiting: the form's question goes to
// /api/v1/ping/stream and each reply is shown as its event comes. Without
// this script the form loads /ping?host=…, which answers when all replies
// are in.
(function () {
  const $ = (id) => document.getElementById(id);
  const form = $("ping-form");
  if (!form || !window.fetch || !window.TextDecoder) return;
  const { t, num } = window.veilI18n;
  const ms = (v, digits) => t("ping.s.ms", { MS: num(v, digits ? { minimumFractionDigits: digits, maximumFractionDigits: digits } : {}) });
  // The page's path: /de/ping keeps its prefix in the address bar.
  const page = location.pathname;
  const params = new URLSearchParams(location.search);
  if (params.get("proto")) $("proto").value = params.get("proto");
  if (params.get("port")) $("port").value = params.get("port");

  function row(th, td) {
    const tr = document.createElement("tr");
    const a = document.createElement("th"), b = document.createElement("td");
    a.textContent = th;
    b.textContent = td;
    tr.append(a, b);
    $("live-lines").append(tr);
  }

  function show(event, d) {
    switch (event) {
      case "start":
        $("live-title").textContent = d.port ? t("ping.title_port", { Host: d.host, Address: d.address, Port: d.port }) : t("ping.title", { Host: d.host, Address: d.address });
        if (d.note) { $("live-note").textContent = t("ping.note.no_icmp"); $("live-note").hidden = false; }
        break;
      case "reply":
        row(t("ping.request", { N: d.seq }), d.rtt_ms < 0 ? (d.status ? t("ping.s.no_reply_status", { Status: d.status }) : t("ping.no_reply")) : ms(d.rtt_ms));
        break;
      case "done":
        $("live-summary").textContent = d.received
          ? t("ping.summary", { Sent: num(d.sent), Received: num(d.received), Min: ms(d.min_ms), Avg: ms(d.avg_ms, 2), Max: ms(d.max_ms) })
          : t("ping.summary_none", { Sent: num(d.sent), Received: num(d.received) });
        break;
      case "error":
        fail(d.error);
        break;
    }
  }

  // The class comes with the message: .status's display would show the
  // empty box despite hidden.
  function fail(msg) {
    $("stream-error").textContent = msg;
    $("stream-error").className = "status warn";
    $("stream-error").hidden = false;
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    q.set("host", $("host").value.trim());
    q.set("proto", $("proto").value);
    if ($("proto").value === "tcp" && $("port").value) q.set("port", $("port").value);
    history.replaceState(null, "", page + "?" + q);
    for (const id of ["result", "error"]) if ($(id)) $(id).remove();
    $("stream-error").hidden = true;
    $("stream-error").className = "";
    $("live-note").hidden = true;
    $("live-lines").replaceChildren();
    $("live-title").textContent = q.get("host");
    $("live-summary").textContent = "";
    $("live").hidden = false;
    let r;
    try {
      // lang: the stream's errors in the page's language.
      r = await fetch("/api/v1/ping/stream?" + q + "&lang=" + encodeURIComponent(window.veilI18n.lang), { cache: "no-store" });
    } catch (err) {
      fail(t("ping.s.unreachable"));
      return;
    }
    if (!r.ok) {
      $("live").hidden = true;
      const j = await r.json().catch(() => ({}));
      fail(j.error || t("ping.s.failed", { Status: r.status }));
      return;
    }
    // Server-sent events: blocks split by a blank line, "event:" and
    // "data:" lines within.
    const reader = r.body.getReader(), dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let event = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) event = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (data) show(event, JSON.parse(data));
      }
    }
  });
})();
