// The DNS leak test, shared by the My IP and DNS leak pages. It asks the
// server for a test, makes the browser resolve every test name (by
// loading an image from it), then reads which resolvers asked.
"use strict";
// veilLeakSummary is a result's verdict in the page's language (the API's
// summary is English).
window.veilLeakSummary = function (r) {
  const { t, n } = window.veilI18n;
  if (r.verdict === "no_queries") return t("leak.no_queries");
  if (r.verdict === "no_leak") return t("leak.no_leak");
  const others = r.resolvers.filter((x) => !x.ours).length;
  return n("leak.leak", r.resolvers.length, { Others: window.veilI18n.num(others) });
};
window.veilLeakTest = async function () {
  const start = await fetch("/api/v1/dnsleak", { method: "POST" });
  if (!start.ok) throw new Error(window.veilI18n.t("leak.err.start", { Status: start.status }));
  const test = await start.json();
  await Promise.all(test.names.map((name) => new Promise((resolve) => {
    const img = new Image();
    const done = () => { clearTimeout(timer); resolve(); };
    const timer = setTimeout(done, 4000);
    img.onload = done;
    img.onerror = done;
    img.src = location.protocol + "//" + name + "/veil-leak.png";
  })));
  const res = await fetch("/api/v1/dnsleak/" + encodeURIComponent(test.id));
  if (!res.ok) throw new Error(window.veilI18n.t("leak.err.result", { Status: res.status }));
  return res.json();
};
