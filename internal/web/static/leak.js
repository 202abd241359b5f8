// The DNS leak test, shared by the My IP and DNS leak pages. It asks the
// server for a test, makes the browser resolve every test name (by
// loading an image from it), then reads which resolvers asked.
"use strict";
window.veilLeakTest = async function () {
  const start = await fetch("/api/v1/dnsleak", { method: "POST" });
  if (!start.ok) throw new Error("the test could not start (" + start.status + ")");
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
  if (!res.ok) throw new Error("the result could not be read (" + res.status + ")");
  return res.json();
};
