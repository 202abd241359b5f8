// The page's messages for its script, in the visitor's language: the page
// renders them as JSON into <script type="application/json" id="messages">
// (a data block, which the content security policy lets stand). t fills a
// message's {{.Name}} placeholders; n picks the plural form for a count
// by Intl.PluralRules; num formats a number for the page's language. A
// message the page lacks shows as its id.
"use strict";
window.veilI18n = (function () {
  const el = document.getElementById("messages");
  const msgs = el ? JSON.parse(el.textContent) : {};
  const lang = document.documentElement.lang || "en";
  const rules = new Intl.PluralRules(lang);
  const fill = (s, vars) => s.replace(/\{\{\s*\.(\w+)\s*\}\}/g, (m, k) => (vars && k in vars ? String(vars[k]) : m));
  function t(id, vars) {
    const m = msgs[id];
    return typeof m === "string" ? fill(m, vars) : id;
  }
  function num(n, opts) {
    return new Intl.NumberFormat(lang, opts).format(n);
  }
  function n(id, count, vars) {
    const m = msgs[id];
    if (!m || typeof m !== "object") return id;
    const s = m[rules.select(count)] || m.other;
    return fill(s, Object.assign({ Count: num(count) }, vars));
  }
  // list joins items as the page's language does ("a, b and c").
  function list(items) {
    try { return new Intl.ListFormat(lang, { type: "unit" }).format(items); } catch (e) { return items.join(", "); }
  }
  return { t, n, num, list, lang };
})();
