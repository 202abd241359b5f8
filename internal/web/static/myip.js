// The browser half of the My IP anonymity check. Every check adds a
// deduction with its explanation and advice; the score is 100 minus the
// deductions, and assess() turns the findings into the one verdict that
// both the score and the line above it show. Nothing found here is sent
// anywhere.
"use strict";
(function () {
  const cfg = JSON.parse(document.getElementById("veil-config").textContent);
  const rep = cfg.report;
  const deductions = [];
  const $ = (id) => document.getElementById(id);
  const { t, num, list } = window.veilI18n;
  const pct = (p) => num(p / 100, { style: "percent" });

  // EXPOSES is the weight of a finding that shows who or where you are
  // (an address that is not Veil's, a leak around the tunnel): enough on
  // its own to take the score below half, as the verdict turns red.
  const EXPOSES = 50;
  // deduct adds the finding key (myip.s.d.KEY.title, .why, .advice in
  // the catalogue), its why filled from vars.
  function deduct(points, key, vars, why) {
    deductions.push({
      points, key,
      title: t("myip.s.d." + key + ".title", vars),
      why: t(why || "myip.s.d." + key + ".why", vars),
      advice: t("myip.s.d." + key + ".advice", vars),
      exposes: points >= EXPOSES,
    });
  }
  function show(id, cls, text) {
    const el = $(id);
    el.replaceChildren();
    const span = document.createElement("span");
    span.className = cls;
    span.textContent = text;
    el.appendChild(span);
  }

  // name is a country's or language's name in the page's language (the
  // report's are English names and codes), or fallback.
  function name(type, code, fallback) {
    try { return (code && new Intl.DisplayNames([window.veilI18n.lang], { type }).of(code)) || fallback; } catch (e) { return fallback; }
  }

  function isPrivate(ip) {
    if (ip.includes(":")) {
      const l = ip.toLowerCase();
      return l === "::1" || l.startsWith("fc") || l.startsWith("fd") || l.startsWith("fe8") || l.startsWith("fe9") || l.startsWith("fea") || l.startsWith("feb");
    }
    const p = ip.split(".").map(Number);
    return p[0] === 10 || p[0] === 127 || (p[0] === 172 && p[1] >= 16 && p[1] < 32) ||
      (p[0] === 192 && p[1] === 168) || (p[0] === 169 && p[1] === 254) || (p[0] === 100 && p[1] >= 64 && p[1] < 128);
  }

  // Server-side findings, already in the report.
  function serverChecks() {
    if (!rep.protected) {
      deduct(60, "unprotected", { IP: rep.ip, Org: rep.asn_org },
        rep.asn_org !== "unknown" ? "myip.s.d.unprotected.why_org" : "myip.s.d.unprotected.why");
    }
    if (rep.proxy_headers.length > 0) {
      deduct(15, "proxy", { Headers: rep.proxy_headers.map((h) => h.name).join(", ") });
    }
    const listed = rep.blocklists.filter((b) => b.listed);
    if (listed.length > 0) {
      deduct(Math.min(15, 5 * listed.length), "dnsbl", { Zones: listed.map((b) => b.zone).join(", ") });
    }
  }

  async function ipFrom(base) {
    const ctl = new AbortController();
    const t = setTimeout(() => ctl.abort(), 5000);
    try {
      const r = await fetch(base.replace(/\/$/, "") + "/json", { signal: ctl.signal, cache: "no-store" });
      return r.ok ? await r.json() : null;
    } catch (e) {
      return null;
    } finally {
      clearTimeout(t);
    }
  }

  async function dualStack() {
    if (!cfg.ipv4_url && !cfg.ipv6_url) { show("check-dualstack", "", t("myip.s.not_checked")); return; }
    const [v4, v6] = await Promise.all([cfg.ipv4_url ? ipFrom(cfg.ipv4_url) : null, cfg.ipv6_url ? ipFrom(cfg.ipv6_url) : null]);
    const seen = [v4, v6].filter(Boolean);
    const text = t("myip.s.dualstack", { V4: v4 ? v4.ip : t("myip.s.none"), V6: v6 ? v6.ip : t("myip.s.none") });
    const exposed = seen.filter((r) => !r.protected);
    if (seen.some((r) => r.protected) && exposed.length > 0) {
      show("check-dualstack", "bad", text);
      deduct(EXPOSES, "dualstack", { Version: exposed[0].ip_version, IP: exposed[0].ip });
    } else {
      show("check-dualstack", "ok", text);
    }
  }

  function offsetMinutes(tz) {
    try {
      const d = new Date();
      const s = d.toLocaleString("en-US", { timeZone: tz, hour12: false });
      return Math.round((new Date(s) - new Date(d.toLocaleString("en-US", { timeZone: "UTC", hour12: false }))) / 60000);
    } catch (e) { return null; }
  }

  function timeZone() {
    const mine = Intl.DateTimeFormat().resolvedOptions().timeZone || t("myip.s.unknown");
    const vars = { Browser: mine, Address: rep.time_zone };
    if (rep.time_zone === "unknown") { show("check-tz", "", t("myip.s.tz.unknown", vars)); return; }
    if (mine === rep.time_zone || offsetMinutes(mine) === offsetMinutes(rep.time_zone)) {
      show("check-tz", "ok", t("myip.s.tz.match", vars));
      return;
    }
    show("check-tz", "bad", t("myip.s.tz.differ", vars));
    deduct(10, "tz", vars);
  }

  function languages() {
    const langs = (navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language]).filter(Boolean);
    const want = rep.country_language;
    const vars = { Langs: langs.join(", "), Lang: name("language", want, want), Country: name("region", rep.country_iso, rep.country) };
    if (!want) { show("check-lang", "", t("myip.s.lang.unknown", vars)); return; }
    const bases = langs.map((l) => l.toLowerCase().split("-")[0]);
    if (bases.includes(want)) { show("check-lang", "ok", t("myip.s.lang.match", vars)); return; }
    show("check-lang", "warn", t("myip.s.lang.differ", vars));
    deduct(5, "lang", vars);
  }

  function webrtc() {
    return new Promise((resolve) => {
      if (!window.RTCPeerConnection) { show("check-webrtc", "ok", t("myip.s.webrtc.off")); resolve(); return; }
      const found = new Set();
      let pc;
      try {
        pc = new RTCPeerConnection({ iceServers: cfg.stun_url ? [{ urls: cfg.stun_url }] : [] });
      } catch (e) { show("check-webrtc", "ok", t("myip.s.webrtc.blocked")); resolve(); return; }
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        try { pc.close(); } catch (e) { /* closed */ }
        const addrs = [...found];
        const pub = addrs.filter((a) => !isPrivate(a) && a !== rep.ip);
        const priv = addrs.filter((a) => isPrivate(a));
        if (pub.length > 0) {
          show("check-webrtc", "bad", t("myip.s.webrtc.exposes", { Addrs: pub.join(", ") }));
          deduct(EXPOSES, "webrtc", { Addrs: pub.join(", ") });
        } else if (priv.length > 0) {
          show("check-webrtc", "warn", t("myip.s.webrtc.exposes_local", { Addrs: priv.join(", ") }));
          deduct(5, "webrtc_local", { Addrs: priv.join(", ") });
        } else {
          show("check-webrtc", "ok", addrs.length ? t("myip.s.webrtc.only", { Addrs: addrs.join(", ") }) : t("myip.s.webrtc.none"));
        }
        resolve();
      };
      const timer = setTimeout(finish, 3000);
      pc.onicecandidate = (ev) => {
        if (!ev.candidate) { finish(); return; }
        const parts = ev.candidate.candidate.split(" ");
        const addr = parts[4];
        if (addr && !addr.endsWith(".local")) found.add(addr);
      };
      pc.createDataChannel("veil");
      pc.createOffer().then((o) => pc.setLocalDescription(o)).catch(finish);
    });
  }

  async function dnsLeak() {
    if (!cfg.dnsleak || !window.veilLeakTest) { show("check-dns", "", t("myip.s.dns.unavailable")); return; }
    try {
      const r = await window.veilLeakTest();
      if (r.verdict === "leak") {
        const others = r.resolvers.filter((x) => !x.ours);
        show("check-dns", "bad", window.veilLeakSummary(r));
        deduct(EXPOSES, "dns", { Resolvers: others.map((x) => x.ip + " (" + x.asn_org + ")").join(", ") });
      } else {
        show("check-dns", r.verdict === "no_leak" ? "ok" : "", window.veilLeakSummary(r));
      }
    } catch (e) {
      show("check-dns", "warn", t("myip.s.dns.failed", { Error: e.message }));
    }
  }

  function osFromUA(ua) {
    if (/Android/i.test(ua)) return "Android";
    if (/iPhone|iPad|iPod/i.test(ua)) return "iOS";
    if (/Windows/i.test(ua)) return "Windows";
    if (/Mac OS X|Macintosh/i.test(ua)) return "macOS";
    if (/CrOS/i.test(ua)) return "ChromeOS";
    if (/Linux|X11/i.test(ua)) return "Linux";
    return null;
  }
  function osFromPlatform(p) {
    if (!p) return null;
    if (/^Win/i.test(p)) return "Windows";
    if (/^Mac/i.test(p)) return "macOS";
    if (/iPhone|iPad|iPod/i.test(p)) return "iOS";
    if (/Android/i.test(p)) return "Android";
    if (/CrOS|Chrome OS/i.test(p)) return "ChromeOS";
    if (/Linux/i.test(p)) return "Linux";
    return null;
  }
  function userAgent() {
    const ua = osFromUA(navigator.userAgent);
    const plat = osFromPlatform((navigator.userAgentData && navigator.userAgentData.platform) || navigator.platform);
    const compatible = ua === plat || (ua === "Android" && plat === "Linux") || (ua === "iOS" && plat === "macOS");
    const vars = { UA: ua || t("myip.s.unknown"), Platform: plat || t("myip.s.unknown") };
    if (!ua || !plat || compatible) { show("check-ua", "ok", t("myip.s.ua.ok", vars)); return; }
    show("check-ua", "bad", t("myip.s.ua.bad", vars));
    deduct(10, "ua", vars);
  }

  // assess is the one decision the verdict and the score come from:
  // "bad" when you are not behind Veil or something gives you away around
  // it, else "warn" when the score is under 80, else "ok".
  function assess() {
    const score = Math.max(0, 100 - deductions.reduce((s, d) => s + d.points, 0));
    const exposing = deductions.filter((d) => d.exposes && d.key !== "unprotected");
    const gw = { Gateway: rep.gateway };
    if (!rep.protected) {
      return { score, level: "bad", verdict: t("myip.s.verdict.unprotected") };
    }
    if (exposing.length > 0) {
      return { score, level: "bad", verdict: t("myip.s.verdict.exposed", Object.assign({ Findings: list(exposing.map((d) => d.title)) }, gw)) };
    }
    if (score < 80) {
      return { score, level: "warn", verdict: t("myip.s.verdict.warn", gw) };
    }
    return { score, level: "ok", verdict: t("myip.s.verdict.ok", gw) };
  }

  // withCode appends text to el, its `quoted` parts as code elements.
  function withCode(el, text) {
    text.split("`").forEach((part, i) => {
      if (i % 2 === 0) { el.append(part); return; }
      const c = document.createElement("code");
      c.textContent = part;
      el.appendChild(c);
    });
  }

  function render() {
    const a = assess();
    const verdict = $("protection");
    verdict.textContent = a.verdict;
    verdict.className = "status " + a.level;
    verdict.dataset.level = a.level;
    const el = $("score");
    el.textContent = pct(a.score);
    el.className = "score " + a.level;
    el.dataset.score = String(a.score);
    el.dataset.level = a.level;
    const list = $("deductions");
    list.replaceChildren();
    if (deductions.length === 0) {
      const li = document.createElement("li");
      li.textContent = t("myip.s.nothing");
      list.appendChild(li);
    }
    for (const d of deductions.sort((a, b) => b.points - a.points)) {
      const li = document.createElement("li");
      const h = document.createElement("strong");
      h.textContent = t("myip.s.deduction", { Points: pct(d.points), Title: d.title });
      const why = document.createElement("div");
      why.textContent = d.why;
      const adv = document.createElement("div");
      adv.className = "advice";
      withCode(adv, t("myip.s.advice", { Advice: d.advice }));
      li.append(h, why, adv);
      list.appendChild(li);
    }
    el.dataset.done = "1";
  }

  serverChecks();
  timeZone();
  languages();
  userAgent();
  Promise.allSettled([dualStack(), webrtc(), dnsLeak()]).then(render);
})();
