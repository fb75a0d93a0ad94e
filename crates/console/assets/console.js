// fulcrum console: the few live parts of the pages. Everything works without this script
// except the live refresh, the file pickers and the wizard's one-step-at-a-time view.
"use strict";
document.documentElement.classList.add("js");

document.addEventListener("DOMContentLoaded", () => {
  fileFillers();
  wizard();
  liveHealth();
  liveTail();
});

// <input type=file data-fill=ID>: reads the chosen file into the text area ID.
function fileFillers() {
  for (const input of document.querySelectorAll("input[type=file][data-fill]")) {
    input.addEventListener("change", async () => {
      const file = input.files[0];
      if (file) document.getElementById(input.dataset.fill).value = await file.text();
    });
  }
}

function wizard() {
  const form = document.getElementById("wizard");
  if (!form) return;
  const steps = [...form.querySelectorAll("fieldset.step")];
  const marks = [...document.querySelectorAll("ol.steps li")];
  const back = document.getElementById("back");
  const next = document.getElementById("next");
  const create = document.getElementById("create");
  let current = 0;
  const show = (i) => {
    current = Math.max(0, Math.min(steps.length - 1, i));
    steps.forEach((s, n) => (s.hidden = n !== current));
    marks.forEach((m, n) => m.toggleAttribute("aria-current", n === current));
    back.hidden = current === 0;
    next.hidden = current === steps.length - 1;
    create.hidden = current !== steps.length - 1;
    if (current === steps.length - 1) review();
    const first = steps[current].querySelector("input:not([type=hidden]), select, textarea");
    if (first && document.activeElement !== document.body) first.focus();
  };
  back.addEventListener("click", () => show(current - 1));
  next.addEventListener("click", () => show(current + 1));
  marks.forEach((m, n) => {
    m.tabIndex = 0;
    m.addEventListener("click", () => show(n));
    m.addEventListener("keydown", (e) => { if (e.key === "Enter") show(n); });
  });

  // The certificate: an existing one, or one uploaded here.
  const sources = form.querySelectorAll("input[name=CertificateSource]");
  const pick = () => {
    const chosen = form.querySelector("input[name=CertificateSource]:checked");
    for (const part of form.querySelectorAll("[data-source]")) {
      part.hidden = !chosen || part.dataset.source !== chosen.value;
    }
  };
  sources.forEach((r) => r.addEventListener("change", pick));
  pick();

  // Another listener row: the last one again, renumbered, empty.
  document.getElementById("add-listener").addEventListener("click", () => {
    const rows = document.getElementById("listener-rows");
    const last = rows.lastElementChild;
    // One more than the highest row number (rows may skip numbers after a refused create).
    const numbers = [...rows.querySelectorAll("[name$='.LoadBalancerPort']")]
      .map((el) => Number((el.name.match(/member\.(\d+)\./) || [])[1] || 0));
    const n = Math.max(0, ...numbers) + 1;
    const row = last.cloneNode(true);
    for (const el of row.querySelectorAll("[name],[id],[for]")) {
      for (const attr of ["name", "id", "for"]) {
        const v = el.getAttribute(attr);
        if (v) el.setAttribute(attr, v.replace(/member[.-]\d+/, (m) => m.replace(/\d+/, n)));
      }
      if (el.tagName === "INPUT") el.value = "";
    }
    for (const l of row.querySelectorAll("label")) l.textContent = l.textContent.replace(/\d+$/, n);
    rows.appendChild(row);
  });

  // Review: what will be created, read back from the form (never the key).
  const review = () => {
    const data = new FormData(form);
    const out = document.getElementById("review");
    const dl = document.createElement("dl");
    const add = (k, v) => {
      if (!v) return;
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd"); dd.textContent = v;
      dl.append(dt, dd);
    };
    add("Name", data.get("LoadBalancerName"));
    add("Scheme", data.get("Scheme"));
    for (let n = 1; n <= 20; n++) {
      const port = data.get(`Listeners.member.${n}.LoadBalancerPort`);
      if (port) add(`Listener ${n}`, `${data.get(`Listeners.member.${n}.Protocol`)}:${port} → ${data.get(`Listeners.member.${n}.InstanceProtocol`)}:${data.get(`Listeners.member.${n}.InstancePort`)}`);
    }
    add("Certificate", data.get("CertificateSource") === "upload"
      ? `upload ${data.get("ServerCertificateName")}` : data.get("SSLCertificateId"));
    add("Security policy", data.get("SecurityPolicy"));
    add("Health check", `${data.get("HealthCheck.Target")} every ${data.get("HealthCheck.Interval")} s`);
    add("Instances", [...data.getAll("Instances"), data.get("InstancesText")].filter(Boolean).join(", "));
    const tags = [1, 2, 3].map((n) => data.get(`Tags.member.${n}.Key`)).filter(Boolean);
    add("Tags", tags.join(", "));
    out.replaceChildren(dl);
  };

  // After a refused create, open the step that holds the field at fault.
  const bad = form.querySelector("[aria-invalid=true]");
  const at = bad ? steps.findIndex((s) => s.contains(bad)) : 0;
  show(at < 0 ? 0 : at);
  if (bad) bad.focus();
}

// table[data-health=URL]: instance states (elements with data-lb and data-instance) refreshed
// every two seconds.
function liveHealth() {
  const table = document.querySelector("table[data-health]");
  if (!table) return;
  const refresh = async () => {
    try {
      const resp = await fetch(table.dataset.health, { credentials: "same-origin" });
      if (resp.ok && !resp.redirected) {
        const { instances } = await resp.json();
        for (const i of instances) {
          const at = `[data-lb="${CSS.escape(i.lb)}"][data-instance="${CSS.escape(i.instance)}"]`;
          for (const state of table.querySelectorAll(`.state${at}`)) {
            state.textContent = i.state;
            state.classList.toggle("ok", i.state === "InService");
            state.classList.toggle("bad", i.state !== "InService");
            state.title = i.reason;
          }
          for (const reason of table.querySelectorAll(`.reason${at}`)) reason.textContent = i.reason;
        }
      }
    } catch (_) { /* the next round tries again */ }
    setTimeout(refresh, 2000);
  };
  setTimeout(refresh, 2000);
}

// pre[data-tail=URL]: the access log, streamed; reconnects when the stream ends.
function liveTail() {
  const pre = document.querySelector("pre[data-tail]");
  if (!pre) return;
  const keep = 200;
  const follow = async () => {
    try {
      const resp = await fetch(pre.dataset.tail, { credentials: "same-origin" });
      // Signed out (sent to the sign-in page) or gone: stop following.
      if (resp.redirected || !resp.ok) return;
      const reader = resp.body.getReader();
      const text = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const lines = (pre.textContent + text.decode(value, { stream: true })).split("\n");
        pre.textContent = lines.slice(-keep).join("\n");
        pre.scrollTop = pre.scrollHeight;
      }
    } catch (_) { /* reconnect below */ }
    setTimeout(follow, 1000);
  };
  follow();
}
