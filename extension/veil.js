// The extension's state and its calls to the control plane, shared by
// the background worker and the popup. Nothing here talks to anyone but
// the control plane the user chose; the proxy's credential is kept in
// the extension's local storage only.

export const api = globalThis.browser ?? globalThis.chrome;

// load returns the saved state: {control, token, credential, servers,
// location, on, expired}.
export async function load() {
  return (await api.storage.local.get("veil")).veil ?? {};
}

export async function save(patch) {
  const st = { ...(await load()), ...patch };
  await api.storage.local.set({ veil: st });
  return st;
}

// call sends one JSON request to the control plane and returns the
// decoded answer; a non-2xx answer throws an Error whose message is the
// control plane's sentence and whose status is the HTTP status.
export async function call(control, method, path, token, body) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(control.replace(/\/+$/, "") + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit", cache: "no-store",
    });
  } catch (e) {
    const err = new Error("The service cannot be reached. Check its address and your connection.");
    err.status = 0;
    throw err;
  }
  let data = null;
  if (resp.status !== 204) {
    try { data = await resp.json(); } catch (e) { data = null; }
  }
  if (!resp.ok) {
    const err = new Error((data && data.error) || `The service answered ${resp.status}.`);
    err.status = resp.status;
    throw err;
  }
  return data;
}

// login exchanges the access code for a session, registers this browser
// as a device of kind "extension" with its own proxy credential, and
// reads the locations. The access code itself is not kept.
export async function login(control, code) {
  const sess = await call(control, "POST", "/api/v1/sessions", "", { access_code: code.replace(/[\s-]/g, "") });
  const account = await call(control, "GET", "/api/v1/account", sess.token);
  if (!account.active) {
    await save({ control, token: sess.token, expired: true });
    return load();
  }
  const cred = await call(control, "POST", "/api/v1/extension", sess.token, { name: browserName() });
  const servers = await call(control, "GET", "/api/v1/servers");
  return save({
    control, token: sess.token, expired: false, device: cred.device.id,
    credential: { user: cred.proxy_user, password: cred.proxy_password },
    servers: servers.filter((s) => s.proxy),
  });
}

// checkAccount asks whether the account is still active, and records
// the answer; a network failure leaves the state as it was.
export async function checkAccount() {
  const st = await load();
  if (!st.token) return st;
  try {
    const account = await call(st.control, "GET", "/api/v1/account", st.token);
    return save({ expired: !account.active });
  } catch (e) {
    if (e.status === 401) return save({ token: "", expired: false, loggedOut: true });
    return st;
  }
}

function browserName() {
  const ua = navigator.userAgent;
  if (/Firefox\//.test(ua)) return "Firefox extension";
  if (/Edg\//.test(ua)) return "Edge extension";
  if (/OPR\//.test(ua)) return "Opera extension";
  return "Chromium extension";
}

// hostPort splits "host:port" or "[v6]:port".
export function hostPort(s) {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(s);
  return m ? { host: m[1], port: Number(m[2]) } : null;
}
