// The popup: log in with the access code, pick a location, turn the
// proxy on and off. The background worker does the work.
import { api, load, login, checkAccount } from "./veil.js";
import { defaultControl } from "./config.js";

const $ = (id) => document.getElementById(id);

function showError(msg) {
  $("error").textContent = msg || "";
  $("error").hidden = !msg;
}

function send(msg) {
  return new Promise((resolve) => api.runtime.sendMessage(msg, resolve));
}

function render(st) {
  const loggedIn = !!st.token && !!st.credential;
  $("login-form").hidden = loggedIn;
  $("main").hidden = !loggedIn;
  $("control").value = st.control || defaultControl;
  if (!loggedIn) {
    if (st.expired) showError("Your account has expired. Add time on the website, then log in again.");
    return;
  }
  $("expired").hidden = !st.expired;
  const sel = $("location");
  sel.replaceChildren(...(st.servers || []).map((s) => {
    const o = document.createElement("option");
    o.value = s.name;
    o.textContent = `${s.location} — ${s.name}${s.online ? "" : " (offline)"}`;
    return o;
  }));
  if (st.location) sel.value = st.location;
  sel.disabled = !!st.on;
  const name = (st.servers || []).find((s) => s.name === st.location);
  $("state").textContent = st.on ? `On, through ${name ? name.location : st.location}` : "Off";
  $("state").className = st.on ? "on" : "";
  $("toggle").textContent = st.on ? "Disconnect" : "Connect";
  $("toggle").className = st.on ? "on" : "";
  $("toggle").disabled = !st.on && (st.expired || !(st.servers || []).length);
  $("webrtc").checked = st.webrtc !== false;
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  showError("");
  $("login").disabled = true;
  try {
    render(await login($("control").value.trim(), $("code").value));
  } catch (e) {
    showError(e.message);
  } finally {
    $("login").disabled = false;
  }
});

$("toggle").addEventListener("click", async () => {
  showError("");
  const st = await load();
  render(await send(st.on ? { cmd: "disconnect" } : { cmd: "connect", location: $("location").value }));
});

$("webrtc").addEventListener("change", async () => {
  render(await send({ cmd: "webrtc", on: $("webrtc").checked }));
});

$("logout").addEventListener("click", async () => {
  render(await send({ cmd: "logout" }));
});

(async () => {
  render(await load());
  render(await checkAccount());
})();
