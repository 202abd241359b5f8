// The extension's background worker: it turns the gateway's proxy on and
// off, answers the proxy's authentication challenge with this device's
// credential, keeps WebRTC from leaking the real address, and notices
// when the account expires.
import { api, load, save, call, checkAccount, hostPort } from "./veil.js";

const firefox = typeof globalThis.browser !== "undefined" && !!api.proxy.onRequest;

// The privacy API's WebRTC policy: only through the proxy, never by a
// direct UDP path that would show the real address.
async function applyWebRTC(st) {
  const policy = st.webrtc === false ? "default" : "disable_non_proxied_udp";
  try {
    await api.privacy.network.webRTCIPHandlingPolicy.set({ value: policy });
  } catch (e) {
    // A browser that does not offer the setting; nothing to protect.
  }
}

function controlHost(st) {
  try { return new URL(st.control).hostname; } catch (e) { return ""; }
}

// applyProxy makes the browser's proxy match st.on and st.location.
async function applyProxy(st) {
  const server = st.on && (st.servers || []).find((s) => s.name === st.location);
  const hp = server && hostPort(server.proxy);
  await api.action.setBadgeText({ text: hp ? "on" : "" });
  if (firefox) return; // onRequest reads the state itself
  if (!hp) {
    await api.proxy.settings.clear({ scope: "regular" });
    return;
  }
  await api.proxy.settings.set({
    scope: "regular",
    value: {
      mode: "fixed_servers",
      rules: {
        singleProxy: { scheme: "https", host: hp.host, port: hp.port },
        // The control plane is reached directly: it must answer even
        // when the account has expired and the proxy refuses.
        bypassList: ["<local>", controlHost(st)].filter(Boolean),
      },
    },
  });
}

// Firefox takes the proxy per request, with the credential in the
// request's Proxy-Authorization header.
let cached = {};
if (firefox) {
  api.proxy.onRequest.addListener((req) => {
    const st = cached;
    const server = st.on && (st.servers || []).find((s) => s.name === st.location);
    const hp = server && hostPort(server.proxy);
    if (!hp || new URL(req.url).hostname === controlHost(st)) return { type: "direct" };
    return {
      type: "https", host: hp.host, port: hp.port,
      proxyAuthorizationHeader: "Basic " + btoa(st.credential.user + ":" + st.credential.password),
    };
  }, { urls: ["<all_urls>"] });
}

// Requests whose proxy challenge was answered once: a second challenge
// means the credential no longer works (the account expired).
const answered = new Set();

api.webRequest.onAuthRequired.addListener((details, callback) => {
  if (!details.isProxy) {
    callback({});
    return;
  }
  load().then(async (st) => {
    if (!st.on || !st.credential || answered.has(details.requestId) || firefox) {
      answered.delete(details.requestId);
      callback({ cancel: true });
      await refused();
      return;
    }
    answered.add(details.requestId);
    setTimeout(() => answered.delete(details.requestId), 60000);
    callback({ authCredentials: { username: st.credential.user, password: st.credential.password } });
  });
}, { urls: ["<all_urls>"] }, ["asyncBlocking"]);

// refused is the proxy turning the credential down: if the account has
// expired, switch off and say so.
async function refused() {
  const st = await checkAccount();
  if (st.expired && st.on) {
    await save({ on: false });
    await applyProxy(await load());
  }
}

api.runtime.onMessage.addListener((msg, _sender, reply) => {
  (async () => {
    let st = await load();
    switch (msg.cmd) {
      case "connect":
        st = await checkAccount();
        if (st.expired) break;
        st = await save({ on: true, location: msg.location || st.location });
        break;
      case "disconnect":
        st = await save({ on: false });
        break;
      case "webrtc":
        st = await save({ webrtc: !!msg.on });
        await applyWebRTC(st);
        break;
      case "logout":
        // This browser stops being a device of the account: its
        // credential leaves the gateways at their next sync.
        if (st.token && st.device) {
          await call(st.control, "DELETE", "/api/v1/devices/" + st.device, st.token).catch(() => {});
          await call(st.control, "DELETE", "/api/v1/sessions", st.token).catch(() => {});
        }
        st = await save({ on: false, token: "", device: 0, credential: null, servers: [], expired: false });
        break;
    }
    await applyProxy(st);
    reply(await load());
  })();
  return true; // reply comes asynchronously
});

api.storage.onChanged.addListener(async () => { cached = await load(); });

async function init() {
  cached = await load();
  await applyWebRTC(cached);
  await applyProxy(cached);
}
api.runtime.onStartup.addListener(init);
api.runtime.onInstalled.addListener(init);
init();
