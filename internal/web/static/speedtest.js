"use strict";
// The speed test: a ping phase, then download and upload, each over a few
// parallel connections for a fixed time, against /speedtest/backend/ (the
// LibreSpeed endpoints). ?seconds=N sets each phase's length (1 to 30,
// default 10). Nothing leaves the browser but the test's own traffic.
(function () {
  const base = "/speedtest/backend/";
  const params = new URLSearchParams(location.search);
  const seconds = Math.min(30, Math.max(1, Number(params.get("seconds")) || 10));
  const streams = 4;
  const $ = (id) => document.getElementById(id);
  const { t, num } = window.veilI18n;
  const button = $("start"), phase = $("phase");
  const one = (v) => num(v, { minimumFractionDigits: 1, maximumFractionDigits: 1, useGrouping: false });
  const mbps = (bytes, ms) => one(bytes * 8 / 1000 / ms);
  const fresh = (path) => base + path + (path.includes("?") ? "&" : "?") + "r=" + Math.random();

  async function ping() {
    const times = [];
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      const r = await fetch(fresh("empty.php"), { cache: "no-store" });
      await r.arrayBuffer();
      times.push(performance.now() - t0);
    }
    let jitter = 0;
    for (let i = 1; i < times.length; i++) jitter += Math.abs(times[i] - times[i - 1]);
    $("ping").textContent = one(Math.min(...times));
    $("jitter").textContent = one(jitter / (times.length - 1));
  }

  // download reads garbage over `streams` connections until the time is up.
  async function download() {
    const stop = new AbortController();
    let bytes = 0;
    const t0 = performance.now();
    const show = setInterval(() => { $("download").textContent = mbps(bytes, performance.now() - t0); }, 200);
    const one = async () => {
      while (!stop.signal.aborted) {
        const r = await fetch(fresh("garbage.php?ckSize=100"), { cache: "no-store", signal: stop.signal });
        const reader = r.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          bytes += value.length;
        }
      }
    };
    const timer = setTimeout(() => stop.abort(), seconds * 1000);
    await Promise.all(Array.from({ length: streams }, () => one().catch((e) => { if (!stop.signal.aborted) throw e; })));
    clearTimeout(timer);
    clearInterval(show);
    $("download").textContent = mbps(bytes, performance.now() - t0);
  }

  // upload posts random blobs over `streams` connections until the time
  // is up, counting what the browser reports as sent.
  async function upload() {
    const block = new Uint8Array(1 << 20);
    for (let i = 0; i < block.length; i += 65536) crypto.getRandomValues(block.subarray(i, i + 65536));
    const blob = new Blob(Array(8).fill(block));
    let bytes = 0, stopped = false;
    const xhrs = new Set();
    const t0 = performance.now();
    const show = setInterval(() => { $("upload").textContent = mbps(bytes, performance.now() - t0); }, 200);
    const one = () => new Promise((resolve, reject) => {
      const next = () => {
        if (stopped) return resolve();
        const x = new XMLHttpRequest();
        let sent = 0;
        x.upload.onprogress = (e) => { bytes += e.loaded - sent; sent = e.loaded; };
        x.onload = () => { xhrs.delete(x); if (x.status !== 200) reject(new Error(t("speedtest.s.upload_status", { Status: x.status }))); else next(); };
        x.onerror = () => { xhrs.delete(x); stopped ? resolve() : reject(new Error(t("speedtest.s.upload_failed"))); };
        x.onabort = () => { xhrs.delete(x); resolve(); };
        xhrs.add(x);
        x.open("POST", fresh("empty.php"));
        x.send(blob);
      };
      next();
    });
    const timer = setTimeout(() => { stopped = true; for (const x of xhrs) x.abort(); }, seconds * 1000);
    await Promise.all(Array.from({ length: streams }, one));
    clearTimeout(timer);
    clearInterval(show);
    $("upload").textContent = mbps(bytes, performance.now() - t0);
  }

  async function run() {
    button.disabled = true;
    phase.hidden = false;
    phase.className = "status";
    delete phase.dataset.done;
    try {
      for (const [name, step] of [["speedtest.s.phase.ping", ping], ["speedtest.s.phase.download", download], ["speedtest.s.phase.upload", upload]]) {
        phase.textContent = t(name);
        await step();
      }
      phase.textContent = t("speedtest.s.done");
      phase.className = "status ok";
      phase.dataset.done = "1";
    } catch (e) {
      phase.textContent = t("speedtest.s.failed", { Error: e.message });
      phase.className = "status warn";
      phase.dataset.done = "error";
    }
    button.disabled = false;
  }

  fetch(fresh("getIP.php"), { cache: "no-store" })
    .then((r) => r.json())
    .then((j) => { $("ip").textContent = j.processedString; })
    .catch(() => { $("ip").textContent = t("speedtest.s.unknown"); });
  button.addEventListener("click", run);
})();
