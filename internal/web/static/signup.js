"use strict";
// The sign-up page's proof of work: find a decimal nonce such that
// SHA-256(challenge + ":" + nonce) starts with the challenge's number of
// zero bits (package pow), with WebCrypto, then POST /api/v1/accounts and
// show the access code once. Its messages come from the page's data-msg-*
// attributes, so that every word lives in the template.
(function () {
  const $ = (id) => document.getElementById(id);
  const form = $("signup");
  if (!form || !window.fetch) return;
  const msg = (k) => form.dataset["msg" + k] || "";
  const status = $("signup-status");

  function zeros(buf) {
    const b = new Uint8Array(buf);
    let n = 0;
    for (let i = 0; i < b.length; i++) {
      if (b[i] === 0) { n += 8; continue; }
      return n + Math.clz32(b[i]) - 24;
    }
    return n;
  }

  async function solve(challenge, bits) {
    const enc = new TextEncoder();
    const batch = 256;
    for (let n = 0; ; n += batch) {
      const tries = [];
      for (let i = n; i < n + batch; i++) {
        tries.push(crypto.subtle.digest("SHA-256", enc.encode(challenge + ":" + i)));
      }
      const sums = await Promise.all(tries);
      for (let i = 0; i < sums.length; i++) {
        if (zeros(sums[i]) >= bits) return String(n + i);
      }
    }
  }

  async function challenge() {
    const r = await fetch("/api/v1/accounts/challenge", { cache: "no-store" });
    if (!r.ok) throw new Error(r.status + "");
    return r.json();
  }

  async function signup() {
    let c = { challenge: form.dataset.challenge, bits: Number(form.dataset.bits) };
    status.textContent = msg("Working");
    for (let attempt = 0; attempt < 2; attempt++) {
      const nonce = await solve(c.challenge, c.bits);
      status.textContent = msg("Sending");
      const r = await fetch("/api/v1/accounts", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        // The page's language becomes the language of the account's mail.
        body: JSON.stringify({ challenge: c.challenge, nonce: nonce, referral: $("referral").value.trim(), lang: document.documentElement.lang }),
      });
      const body = await r.json().catch(() => ({}));
      if (r.ok) return body;
      // An expired or used challenge (the page was open long): one more
      // try with a fresh one.
      if (r.status !== 400 || attempt > 0 || !/proof of work/.test(body.error || "")) {
        throw new Error(body.error || String(r.status));
      }
      c = await challenge();
      status.textContent = msg("Working");
    }
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!window.crypto || !crypto.subtle) { status.textContent = msg("Nocrypto"); return; }
    const button = $("get-code");
    button.disabled = true;
    try {
      const out = await signup();
      $("access-code").textContent = out.access_code;
      $("login-code").value = out.access_code;
      form.hidden = true;
      $("signup-result").hidden = false;
    } catch (e) {
      status.textContent = msg("Failed") + " " + e.message;
      button.disabled = false;
    }
  });
  // The button waits for this script: a click before it would submit the
  // form as a plain GET and reload the page.
  $("get-code").disabled = false;

  $("copy-code").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText($("access-code").textContent);
      $("copy-code").textContent = msg("Copied");
    } catch (e) {
      // No clipboard permission: select the code so that it can be copied by hand.
      const range = document.createRange();
      range.selectNodeContents($("access-code"));
      getSelection().removeAllRanges();
      getSelection().addRange(range);
    }
  });
})();
