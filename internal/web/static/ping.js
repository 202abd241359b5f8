"use strict";
// The ping page without waiting: the form's question goes to
// /api/v1/ping/stream and each reply is shown as its event comes. Without
// this script the form loads /ping?host=…, which answers when all replies
// are in.
(function () {
  const $ = (id) => document.getElementById(id);
  const form = $("ping-form");
  if (!form || !window.fetch || !window.TextDecoder) return;
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
        $("live-title").textContent = d.host + " (" + d.address + (d.port ? ", TCP port " + d.port : "") + ")";
        if (d.note) { $("live-note").textContent = d.note; $("live-note").hidden = false; }
        break;
      case "reply":
        row("Request " + d.seq, d.rtt_ms < 0 ? "no reply" + (d.status ? " (" + d.status + ")" : "") : d.rtt_ms + " ms");
        break;
      case "done":
        $("live-summary").textContent = d.sent + " sent, " + d.received + " received" +
          (d.received ? "; min " + d.min_ms + " ms, avg " + d.avg_ms.toFixed(2) + " ms, max " + d.max_ms + " ms" : "");
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
    history.replaceState(null, "", "/ping?" + q);
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
      r = await fetch("/api/v1/ping/stream?" + q, { cache: "no-store" });
    } catch (err) {
      fail("The server could not be reached.");
      return;
    }
    if (!r.ok) {
      $("live").hidden = true;
      const j = await r.json().catch(() => ({}));
      fail(j.error || "The ping failed (" + r.status + ").");
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
