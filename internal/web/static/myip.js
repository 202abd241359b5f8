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

  // EXPOSES is the weight of a finding that shows who or where you are
  // (an address that is not Veil's, a leak around the tunnel): enough on
  // its own to take the score below half, as the verdict turns red.
  const EXPOSES = 50;
  function deduct(points, title, why, advice) {
    deductions.push({ points, title, why, advice, exposes: points >= EXPOSES });
  }
  function show(id, cls, text) {
    const el = $(id);
    el.replaceChildren();
    const span = document.createElement("span");
    span.className = cls;
    span.textContent = text;
    el.appendChild(span);
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
      deduct(60, "Not connected through Veil",
        "Sites see " + rep.ip + (rep.asn_org !== "unknown" ? ", held by " + rep.asn_org : "") + ". Your provider can tell them who had this address.",
        "Connect with `veil connect` or a Veil WireGuard config, then reload this page.");
    }
    if (rep.proxy_headers.length > 0) {
      deduct(15, "Proxy headers in your request",
        "Your request carried " + rep.proxy_headers.map((h) => h.name).join(", ") + ": a proxy on the way says it is there, and may pass on your real address.",
        "Use a VPN rather than an HTTP proxy, or a proxy that adds no headers.");
    }
    const listed = rep.blocklists.filter((b) => b.listed);
    if (listed.length > 0) {
      deduct(Math.min(15, 5 * listed.length), "Address on DNS blocklists",
        "Listed on " + listed.map((b) => b.zone).join(", ") + ". Sites treat listed addresses with suspicion, and some block them.",
        "Switch to another location; if it is Veil's, tell support.");
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
    if (!cfg.ipv4_url && !cfg.ipv6_url) { show("check-dualstack", "", "not checked here"); return; }
    const [v4, v6] = await Promise.all([cfg.ipv4_url ? ipFrom(cfg.ipv4_url) : null, cfg.ipv6_url ? ipFrom(cfg.ipv6_url) : null]);
    const seen = [v4, v6].filter(Boolean);
    const text = "IPv4: " + (v4 ? v4.ip : "none") + " · IPv6: " + (v6 ? v6.ip : "none");
    const exposed = seen.filter((r) => !r.protected);
    if (seen.some((r) => r.protected) && exposed.length > 0) {
      show("check-dualstack", "bad", text);
      deduct(EXPOSES, "IPv" + exposed[0].ip_version + " goes around the tunnel",
        "Your IPv" + exposed[0].ip_version + " traffic leaves as " + exposed[0].ip + ", not through Veil.",
        "Let Veil carry both IPv4 and IPv6 (the client does by default), or turn IPv6 off.");
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
    const mine = Intl.DateTimeFormat().resolvedOptions().timeZone || "unknown";
    if (rep.time_zone === "unknown") { show("check-tz", "", "browser: " + mine + "; address: unknown"); return; }
    if (mine === rep.time_zone || offsetMinutes(mine) === offsetMinutes(rep.time_zone)) {
      show("check-tz", "ok", "browser " + mine + " matches the address (" + rep.time_zone + ")");
      return;
    }
    show("check-tz", "bad", "browser " + mine + ", address " + rep.time_zone);
    deduct(10, "Time zone does not match the address",
      "Your browser says " + mine + " but your address is in " + rep.time_zone + ". Sites read both and see that you hide your location.",
      "Pick a Veil location in your own time zone, or set the system time zone to match the location.");
  }

  function languages() {
    const langs = (navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language]).filter(Boolean);
    const want = rep.country_language;
    if (!want) { show("check-lang", "", langs.join(", ") + " (country language unknown)"); return; }
    const bases = langs.map((l) => l.toLowerCase().split("-")[0]);
    if (bases.includes(want)) { show("check-lang", "ok", langs.join(", ") + " includes " + want); return; }
    show("check-lang", "warn", langs.join(", ") + "; " + rep.country + " speaks " + want);
    deduct(5, "Browser languages do not fit the country",
      "Your browser asks for " + langs.join(", ") + " while most people in " + rep.country + " use " + want + ". It hints that you are not where your address is.",
      "This is a mild signal; pick a location where your language is common if it matters.");
  }

  function webrtc() {
    return new Promise((resolve) => {
      if (!window.RTCPeerConnection) { show("check-webrtc", "ok", "WebRTC is off in this browser"); resolve(); return; }
      const found = new Set();
      let pc;
      try {
        pc = new RTCPeerConnection({ iceServers: cfg.stun_url ? [{ urls: cfg.stun_url }] : [] });
      } catch (e) { show("check-webrtc", "ok", "WebRTC is blocked"); resolve(); return; }
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
          show("check-webrtc", "bad", "exposes " + pub.join(", "));
          deduct(EXPOSES, "WebRTC shows another address",
            "WebRTC in your browser hands out " + pub.join(", ") + ", not the address above. Any page can read it, with no permission asked.",
            "Connect through Veil in tun mode so every route goes through the tunnel, or turn WebRTC off (uBlock Origin: \"Prevent WebRTC from leaking local IP addresses\").");
        } else if (priv.length > 0) {
          show("check-webrtc", "warn", "exposes local " + priv.join(", "));
          deduct(5, "WebRTC shows your local address",
            "WebRTC hands out " + priv.join(", ") + ", which helps tell you apart on your network.",
            "Use a browser that hides local addresses behind mDNS names (current Chrome and Firefox do).");
        } else {
          show("check-webrtc", "ok", addrs.length ? "only " + addrs.join(", ") : "no address exposed");
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
    if (!cfg.dnsleak || !window.veilLeakTest) { show("check-dns", "", "not available here"); return; }
    try {
      const r = await window.veilLeakTest();
      if (r.verdict === "leak") {
        const others = r.resolvers.filter((x) => !x.ours);
        show("check-dns", "bad", r.summary);
        deduct(EXPOSES, "DNS leak",
          "Your lookups reach " + others.map((x) => x.ip + " (" + x.asn_org + ")").join(", ") + ", outside Veil. Whoever runs them sees every site you visit.",
          "Let Veil set your DNS (the client does so in tun mode), and turn off the browser's own secure DNS if it points elsewhere.");
      } else {
        show("check-dns", r.verdict === "no_leak" ? "ok" : "", r.summary);
      }
    } catch (e) {
      show("check-dns", "warn", "the test failed: " + e.message);
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
    if (!ua || !plat || compatible) { show("check-ua", "ok", (ua || "unknown") + " in the user agent, " + (plat || "unknown") + " platform"); return; }
    show("check-ua", "bad", "user agent says " + ua + ", platform says " + plat);
    deduct(10, "User agent does not match the platform",
      "Your browser claims " + ua + " in its user agent but reports " + plat + " as its platform. A changed user agent makes you stand out rather than hide.",
      "Remove the user-agent switcher; use a browser built to look uniform, such as Tor Browser or Mullvad Browser.");
  }

  // assess is the one decision the verdict and the score come from:
  // "bad" when you are not behind Veil or something gives you away around
  // it, else "warn" when the score is under 80, else "ok".
  function assess() {
    const score = Math.max(0, 100 - deductions.reduce((s, d) => s + d.points, 0));
    const exposing = deductions.filter((d) => d.exposes && d.title !== "Not connected through Veil");
    const gw = "this is the Veil gateway " + rep.gateway;
    if (!rep.protected) {
      return { score, level: "bad", verdict: "You are not protected: this address is not one of Veil's." };
    }
    if (exposing.length > 0) {
      return { score, level: "bad", verdict: "You are not fully protected: " + gw + ", but " + exposing.map((d) => d.title).join("; ") + "." };
    }
    if (score < 80) {
      return { score, level: "warn", verdict: "You are protected: " + gw + ", but the checks below find ways to tell you apart." };
    }
    return { score, level: "ok", verdict: "You are protected: " + gw + "." };
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
    el.textContent = a.score + "%";
    el.className = "score " + a.level;
    el.dataset.score = String(a.score);
    el.dataset.level = a.level;
    const list = $("deductions");
    list.replaceChildren();
    if (deductions.length === 0) {
      const li = document.createElement("li");
      li.textContent = "Nothing here gives you away.";
      list.appendChild(li);
    }
    for (const d of deductions.sort((a, b) => b.points - a.points)) {
      const li = document.createElement("li");
      const h = document.createElement("strong");
      h.textContent = "−" + d.points + "% " + d.title;
      const why = document.createElement("div");
      why.textContent = d.why;
      const adv = document.createElement("div");
      adv.className = "advice";
      withCode(adv, "What to do: " + d.advice);
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
