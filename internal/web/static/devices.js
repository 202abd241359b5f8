// The account page's "Add a device": the WireGuard key pair is made here
// (X25519 in Web Crypto), only the public key is sent, and the wg-quick
// file and its QR code are written here. The private key leaves this
// page only in the file the visitor downloads and the code drawn on it.
// The file is the one `veil wg-config` writes (internal/client/wgconfig.go).
import { qrcode } from "/static/vendor/qrcode-generator/qrcode.mjs";

const form = document.getElementById("add-device");
const status = document.getElementById("add-status");

function say(text) {
  status.textContent = text;
  status.hidden = false;
}

function base64(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

async function keyPair() {
  const kp = await crypto.subtle.generateKey({ name: "X25519" }, true, ["deriveBits"]);
  const jwk = await crypto.subtle.exportKey("jwk", kp.privateKey);
  const pub = new Uint8Array(await crypto.subtle.exportKey("raw", kp.publicKey));
  const priv = Uint8Array.from(atob(jwk.d.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  // Clamped as `wg genkey` stores it; X25519 clamps anyway, so the public
  // key is the same.
  priv[0] &= 248;
  priv[31] = (priv[31] & 127) | 64;
  return { privateKey: base64(priv), publicKey: base64(pub) };
}

function oneLine(s) {
  return s.replace(/[\r\n]/g, " ");
}

function wgConfig(privateKey, dev, srv) {
  return `# Veil device ${oneLine(dev.name)}, gateway ${srv.value} (${srv.dataset.location})\n` +
    "[Interface]\n" +
    `PrivateKey = ${privateKey}\n` +
    `Address = ${dev.ipv4}, ${dev.ipv6}\n` +
    `DNS = ${srv.dataset.dns4}, ${srv.dataset.dns6}\n` +
    "\n[Peer]\n" +
    `PublicKey = ${srv.dataset.publicKey}\n` +
    `Endpoint = ${srv.dataset.endpoint}\n` +
    "AllowedIPs = 0.0.0.0/0, ::/0\n" +
    "PersistentKeepalive = 25\n";
}

function drawQR(canvas, text) {
  qrcode.stringToBytes = (s) => Array.from(new TextEncoder().encode(s));
  const qr = qrcode(0, "L");
  qr.addData(text, "Byte");
  qr.make();
  const n = qr.getModuleCount(), cell = 6, margin = 4 * cell;
  canvas.width = canvas.height = n * cell + 2 * margin;
  const g = canvas.getContext("2d");
  g.fillStyle = "#fff";
  g.fillRect(0, 0, canvas.width, canvas.height);
  g.fillStyle = "#000";
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      if (qr.isDark(r, c)) g.fillRect(margin + c * cell, margin + r * cell, cell, cell);
    }
  }
}

// fileName is a wg-quick interface name: at most 15 of [a-z0-9-].
function fileName(location) {
  return "veil-" + location.toLowerCase().replace(/[^a-z0-9-]/g, "").slice(0, 10) + ".conf";
}

async function addDevice(ev) {
  ev.preventDefault();
  const button = document.getElementById("add");
  button.disabled = true;
  try {
    say(status.dataset.working);
    let keys;
    try {
      keys = await keyPair();
    } catch (e) {
      say(status.dataset.unsupported);
      return;
    }
    const srv = form.elements.server.selectedOptions[0];
    const resp = await fetch("/account/devices", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": form.elements.csrf.value },
      body: JSON.stringify({ name: form.elements.name.value, public_key: keys.publicKey }),
    });
    const body = await resp.json().catch(() => ({ error: resp.statusText }));
    if (!resp.ok) {
      say(`${status.dataset.failed} ${body.error}`);
      return;
    }
    const conf = wgConfig(keys.privateKey, body, srv);
    const link = document.getElementById("conf-download");
    if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(new Blob([conf], { type: "text/plain" }));
    link.download = fileName(srv.dataset.location);
    document.getElementById("new-device-name").textContent = body.name;
    drawQR(document.getElementById("conf-qr"), conf);
    status.hidden = true;
    document.getElementById("new-device").hidden = false;
    form.reset();
  } finally {
    button.disabled = false;
  }
}

if (form) form.addEventListener("submit", addDevice);
