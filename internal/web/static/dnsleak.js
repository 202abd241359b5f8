"use strict";
(function () {
  const button = document.getElementById("start");
  const verdict = document.getElementById("verdict");
  const table = document.getElementById("resolvers");
  const { t } = window.veilI18n;
  const cell = (tr, text) => { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); };
  async function run() {
    button.disabled = true;
    verdict.hidden = false;
    verdict.className = "status";
    verdict.textContent = t("dnsleak.s.testing");
    try {
      const r = await window.veilLeakTest();
      verdict.textContent = window.veilLeakSummary(r);
      verdict.className = "status " + (r.verdict === "no_leak" ? "ok" : r.verdict === "leak" ? "bad" : "warn");
      verdict.dataset.verdict = r.verdict;
      table.replaceChildren();
      for (const rv of r.resolvers) {
        const tr = document.createElement("tr");
        cell(tr, rv.ip);
        cell(tr, rv.ours ? t("dnsleak.s.ours", { Gateway: rv.gateway }) : t("dnsleak.s.not_ours"));
        cell(tr, [rv.city, rv.country].join(", "));
        cell(tr, rv.asn + " " + rv.asn_org);
        cell(tr, (rv.client_subnets || []).join(", ") || t("dnsleak.s.none"));
        table.appendChild(tr);
      }
      document.getElementById("results").hidden = r.resolvers.length === 0;
    } catch (e) {
      verdict.className = "status warn";
      verdict.textContent = t("dnsleak.s.failed", { Error: e.message });
    }
    button.disabled = false;
  }
  button.addEventListener("click", run);
  run();
})();
