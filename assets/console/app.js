// The operator console: plain DOM over the service's admin API, no framework, no build step.
// Credentials live in this tab's sessionStorage only and go out as headers on each call.
"use strict";

const body = document.body;
const AUTH = body.dataset.auth; // "jwt" or "headers"
const API = body.dataset.api; // e.g. "/assessment/v1"
const KEY = "assessment-console";
const view = document.getElementById("view");
const notice = document.getElementById("notice");
let leave = null; // stops what the current page runs (the live tail)

// ---------------------------------------------------------------- small DOM helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function when(ts) {
  return ts ? new Date(ts).toLocaleString() : "";
}

function show(message) {
  notice.textContent = message;
  notice.hidden = !message;
}

// ---------------------------------------------------------------- the caller

function credentials() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
}

function headers() {
  const c = credentials() || {};
  const out = {};
  if (AUTH === "jwt") {
    if (c.token) out.authorization = "Bearer " + c.token;
    if (c.org) out.organisationid = c.org;
  } else {
    if (c.tenant) out.tenantid = c.tenant;
    if (c.org) out.organisationid = c.org;
    if (c.user) out.userid = c.user;
  }
  return out;
}

class Refused extends Error {}

async function call(method, path, payload) {
  const init = { method, headers: headers() };
  if (payload !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(payload);
  }
  const res = await fetch(API + path, init);
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (res.status === 401 || res.status === 403) {
    throw new Refused(
      "This account may not use the console: it needs the admin role" +
        (json && json.params && json.params.errmsg ? ` (${json.params.errmsg})` : "") + "."
    );
  }
  if (!res.ok) {
    const why = json && json.params && json.params.errmsg ? json.params.errmsg : res.statusText;
    throw new Error(`${method} ${path}: ${res.status} ${why}`);
  }
  return json ? json.result : null;
}

// ---------------------------------------------------------------- pages

const pages = {
  "/subscriptions": subscriptionsPage,
  "/deliveries": deliveriesPage,
  "/dead": deadPage,
  "/live": livePage,
  "/tests": testsPage,
};

async function route() {
  if (leave) {
    leave();
    leave = null;
  }
  show("");
  const box = h("div", {});
  view.replaceChildren(box);
  const signedIn = credentials() !== null;
  document.getElementById("login").hidden = signedIn;
  document.getElementById("nav").hidden = !signedIn;
  if (!signedIn) return;
  const hash = location.hash.replace(/^#/, "") || "/subscriptions";
  const [path, arg] = hash.startsWith("/tests/") ? ["/tests", hash.slice(7)] : [hash, null];
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.getAttribute("href") === "#" + path);
  }
  const page = pages[path] || subscriptionsPage;
  try {
    await page(box, arg);
  } catch (e) {
    // Only the page on screen reports (a page left meanwhile may fail as it is torn down).
    if (box.isConnected) {
      box.replaceChildren();
      show(e.message);
    }
  }
}

async function subscriptionsPage(box) {
  const subs = await call("GET", "/console/subscriptions");
  box.append(
    h("h2", {}, "Subscriptions"),
    h("p", { class: "muted" }, "Where this tenant's events go. Counts are of the tenant's own subscriptions."),
    h(
      "table",
      { id: "subscriptions" },
      h("tr", {}, ["Name", "Kind", "Target", "Events", "State", "Backlog", "Delivered", "Dead", "Last success", "Last failure"].map((t) => h("th", {}, t))),
      subs.map((s) => {
        const d = s.deliveries;
        const state = s.isActive ? "active" : "disabled" + (s.disabledReason ? `: ${s.disabledReason}` : "");
        const connection = s.connection ? ` (${s.connection.state || JSON.stringify(s.connection)})` : "";
        return h(
          "tr",
          { class: "subscription", "data-id": s.subscriptionId },
          h("td", {}, s.name, h("div", { class: "muted" }, s.source)),
          h("td", {}, s.kind),
          h("td", { class: "mono" }, s.target),
          h("td", {}, s.events.join(", ")),
          h("td", { class: s.isActive ? "state-active" : "state-disabled" }, state + connection),
          h("td", {}, d ? d.backlog : "—"),
          h("td", {}, d ? d.delivered : "—"),
          h("td", {}, d ? d.dead : "—"),
          h("td", {}, d ? when(d.lastSuccessAt) : ""),
          h("td", {}, d ? [when(d.lastFailureAt), d.lastError ? h("div", { class: "muted" }, d.lastError) : null] : "")
        );
      })
    )
  );
}

function isoOf(input) {
  return input.value ? new Date(input.value).toISOString() : null;
}

// A table of deliveries; each row opens its tries. `pick`: rows get a checkbox and a replay button.
function deliveryTable(rows, subs, pick, after) {
  const name = (id) => (subs.find((s) => s.subscriptionId === id) || {}).name || id;
  const table = h(
    "table",
    { id: "deliveries" },
    h("tr", {}, [pick ? "" : null, "Event", "Subscription", "Status", "Tries", "Last status", "Last error", "Delivered", pick ? "" : null].filter((t) => t !== null).map((t) => h("th", {}, t)))
  );
  for (const d of rows) {
    const row = h(
      "tr",
      { class: "delivery", "data-id": d.deliveryId, "data-status": d.status },
      pick ? h("td", {}, h("input", { type: "checkbox", class: "pick", value: d.deliveryId, onclick: (e) => e.stopPropagation() })) : null,
      h("td", {}, d.eventName, h("div", { class: "muted mono" }, d.eventId)),
      h("td", {}, name(d.subscriptionId)),
      h("td", { class: `status status-${d.status}` }, d.status),
      h("td", {}, d.attemptCount),
      h("td", {}, d.lastStatusCode ?? ""),
      h("td", { class: "error" }, d.lastError ?? ""),
      h("td", {}, when(d.deliveredAt)),
      pick
        ? h("td", {}, h("button", {
            type: "button",
            class: "replay",
            onclick: async (e) => {
              e.stopPropagation();
              await replay([d.deliveryId]);
              await after();
            },
          }, "Replay"))
        : null
    );
    row.addEventListener("click", () => toggleTries(row, d.deliveryId, pick ? 9 : 7));
    table.append(row);
  }
  return table;
}

async function toggleTries(row, id, span) {
  const next = row.nextElementSibling;
  if (next && next.classList.contains("tries")) {
    next.remove();
    return;
  }
  const tries = await call("GET", `/webhooks/deliveries/${id}/attempts`);
  const inner = h(
    "table",
    {},
    h("tr", {}, ["#", "Started", "Duration", "Status", "Error", "Response"].map((t) => h("th", {}, t))),
    tries.map((t) =>
      h("tr", { class: "try" },
        h("td", {}, t.attemptNumber),
        h("td", {}, when(t.startedAt)),
        h("td", {}, `${t.durationMs} ms`),
        h("td", {}, t.statusCode ?? ""),
        h("td", {}, t.error ?? ""),
        h("td", { class: "mono" }, t.responseBody ?? ""))
    )
  );
  row.after(h("tr", { class: "tries" }, h("td", { colspan: span }, tries.length ? inner : "No try yet.")));
}

async function replay(ids) {
  let n = 0;
  for (const id of ids) {
    const r = await call("POST", `/webhooks/deliveries/${id}/replay`);
    n += r && r.replayed ? r.replayed : 0;
  }
  show(`${n} deliver${n === 1 ? "y" : "ies"} queued again.`);
}

async function deliveriesPage(box) {
  const subs = await call("GET", "/console/subscriptions");
  const f = {
    event: h("input", { id: "f-event", placeholder: "attempt.submitted" }),
    subscription: h("select", { id: "f-subscription" }, h("option", { value: "" }, "any"), subs.filter((s) => s.deliveries).map((s) => h("option", { value: s.subscriptionId }, s.name))),
    status: h("select", { id: "f-status" }, ["", "pending", "delivering", "delivered", "dead"].map((s) => h("option", { value: s }, s || "any"))),
    from: h("input", { id: "f-from", type: "datetime-local" }),
    to: h("input", { id: "f-to", type: "datetime-local" }),
  };
  const results = h("div", {});
  async function load() {
    const q = new URLSearchParams({ limit: "100" });
    if (f.event.value.trim()) q.set("event", f.event.value.trim());
    if (f.subscription.value) q.set("subscriptionId", f.subscription.value);
    if (f.status.value) q.set("status", f.status.value);
    if (isoOf(f.from)) q.set("from", isoOf(f.from));
    if (isoOf(f.to)) q.set("to", isoOf(f.to));
    const page = await call("GET", `/webhooks/deliveries?${q}`);
    results.replaceChildren(
      h("p", { class: "muted" }, `${page.totalElements} deliveries; the newest 100 shown. A row opens its tries.`),
      deliveryTable(page.content, subs, false, load)
    );
  }
  box.append(
    h("h2", {}, "Delivery log"),
    h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); load().catch((x) => show(x.message)); } },
      h("label", {}, "Event", f.event),
      h("label", {}, "Subscription", f.subscription),
      h("label", {}, "Status", f.status),
      h("label", {}, "From", f.from),
      h("label", {}, "To", f.to),
      h("button", { id: "f-apply", type: "submit" }, "Filter")),
    results
  );
  await load();
}

async function deadPage(box) {
  const subs = await call("GET", "/console/subscriptions");
  const results = h("div", {});
  const from = h("input", { id: "range-from", type: "datetime-local" });
  const to = h("input", { id: "range-to", type: "datetime-local" });
  async function load() {
    const page = await call("GET", "/webhooks/dead-letters?limit=100");
    results.replaceChildren(
      h("p", { class: "muted" }, `${page.totalElements} dead letters (retries ran out); the newest 100 shown.`),
      deliveryTable(page.content, subs, true, load)
    );
  }
  box.append(
    h("h2", {}, "Dead letters"),
    h("div", { class: "actions" },
      h("button", {
        id: "replay-selected",
        type: "button",
        onclick: async () => {
          const ids = [...box.querySelectorAll("input.pick:checked")].map((c) => c.value);
          if (!ids.length) return show("Select dead letters to replay first.");
          await replay(ids);
          await load();
        },
      }, "Replay selected"),
      h("label", {}, "From", from),
      h("label", {}, "To", to),
      h("button", {
        id: "replay-range",
        type: "button",
        onclick: async () => {
          if (!from.value || !to.value) return show("Give the time range's start and end.");
          const r = await call("POST", "/webhooks/replay", { from: isoOf(from), to: isoOf(to), status: "dead" });
          show(`${r.replayed} dead letters of that range queued again.`);
          await load();
        },
      }, "Replay the range")),
    results
  );
  await load();
}

async function livePage(box) {
  const list = h("ul", { id: "live-list" });
  const state = h("p", { id: "live-state", class: "muted" }, "Connecting…");
  box.append(h("h2", {}, "Live events"), state, list);
  const ctrl = new AbortController();
  if (!box.isConnected) return;
  leave = () => ctrl.abort();
  let res;
  try {
    res = await fetch(API + "/events/stream", {
      headers: { ...headers(), accept: "text/event-stream" },
      signal: ctrl.signal,
    });
  } catch (e) {
    if (ctrl.signal.aborted) return;
    throw e;
  }
  if (res.status === 401 || res.status === 403) throw new Refused("This account may not use the console: it needs the admin role.");
  if (!res.ok) throw new Error(`The live tail answered ${res.status}.`);
  state.textContent = "Listening: events appear here as they commit.";
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields = {};
        for (const line of block.split("\n")) {
          const i = line.indexOf(":");
          if (i <= 0) continue;
          const k = line.slice(0, i);
          fields[k] = (fields[k] ? fields[k] + "\n" : "") + line.slice(i + 1).replace(/^ /, "");
        }
        if (!fields.data) continue;
        const e = JSON.parse(fields.data);
        list.prepend(
          h("li", { class: "event", "data-name": e.name, "data-seq": fields.id },
            h("span", { class: "name" }, e.name),
            h("span", { class: "muted" }, when(e.timestamp)),
            h("div", { class: "mono" }, JSON.stringify(e.data)))
        );
      }
    }
  } catch (e) {
    if (!ctrl.signal.aborted) throw e;
  }
  if (!ctrl.signal.aborted) state.textContent = "The stream ended (the service is stopping?). Open the page again to resume.";
}

async function testsPage(box, id) {
  if (id) return testPage(box, id);
  const page = await call("GET", "/tests?limit=100");
  box.append(
    h("h2", {}, "Tests"),
    h("table", { id: "tests" },
      h("tr", {}, ["Title", "Type", "Status", "Version"].map((t) => h("th", {}, t))),
      page.content.map((t) =>
        h("tr", {},
          h("td", {}, h("a", { class: "test-link", href: `#/tests/${t.testId}` }, t.title)),
          h("td", {}, t.type),
          h("td", {}, t.status),
          h("td", {}, t.version))))
  );
}

// A bar chart of `items` ({label, value}), values from `min` to `max`.
function bars(id, items, min, max, format) {
  const width = 520, row = 22, left = 150, height = Math.max(row * items.length + 10, 40);
  const scale = (v) => ((v - min) / (max - min || 1)) * (width - left - 50);
  const zero = left + scale(Math.max(min, 0));
  return svg("svg", { id, width, height, viewBox: `0 0 ${width} ${height}`, role: "img" },
    items.map((it, i) => {
      const v = it.value ?? 0;
      const x = Math.min(zero, left + scale(v));
      const w = Math.abs(left + scale(v) - zero);
      return [
        svg("text", { x: 0, y: i * row + 15 }, it.label.length > 22 ? it.label.slice(0, 21) + "…" : it.label),
        svg("rect", { class: v < 0 ? "bar negative" : "bar", x, y: i * row + 4, width: Math.max(w, 1), height: row - 8 }),
        svg("text", { x: left + scale(Math.max(v, 0)) + 4, y: i * row + 15 }, it.value === null || it.value === undefined ? "n/a" : format(v)),
      ];
    }));
}

function histogram(dist, total) {
  const width = 520, height = 180, bottom = 24;
  const most = Math.max(1, ...dist.map((d) => d.attempts));
  const top = Math.max(total, ...dist.map((d) => d.score), 1);
  const x = (s) => 20 + (s / top) * (width - 50);
  return svg("svg", { id: "histogram", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" },
    svg("line", { x1: 20, y1: height - bottom, x2: width - 20, y2: height - bottom, stroke: "#9aa3ad" }),
    dist.map((d) => {
      const h2 = (d.attempts / most) * (height - bottom - 20);
      return [
        svg("rect", { class: "bar", x: x(d.score) - 6, y: height - bottom - h2, width: 12, height: h2 }),
        svg("text", { x: x(d.score) - 6, y: height - bottom - h2 - 4 }, d.attempts),
        svg("text", { x: x(d.score) - 6, y: height - 6 }, d.score),
      ];
    }));
}

async function testPage(box, id) {
  const stats = await call("GET", `/tests/${id}/statistics`);
  const total = stats.questions.reduce((s, q) => s + (q.marks || 0), 0);
  const fmt = (v) => (v === null || v === undefined ? "n/a" : Number(v).toFixed(2));
  box.append(
    h("h2", {}, "Test statistics"),
    h("p", { id: "test-summary" },
      `Version ${stats.version}: ${stats.attempts} submitted attempts; mean ${fmt(stats.mean)}, median ${fmt(stats.median)}, ` +
      `standard deviation ${fmt(stats.standardDeviation)}, Cronbach's alpha ${fmt(stats.cronbachAlpha)}.`),
    h("div", { class: "charts" },
      h("div", { class: "chart" }, h("h3", {}, "Scores"), histogram(stats.scoreDistribution, total)),
      h("div", { class: "chart" }, h("h3", {}, "Facility (mean score over marks)"),
        bars("facility", stats.questions.map((q) => ({ label: q.text, value: q.facility })), 0, 1, (v) => v.toFixed(2))),
      h("div", { class: "chart" }, h("h3", {}, "Discrimination (item against the rest)"),
        bars("discrimination", stats.questions.map((q) => ({ label: q.text, value: q.discrimination })), -1, 1, (v) => v.toFixed(2))))
  );
}

// ---------------------------------------------------------------- sign in and out

function setUpLogin() {
  const help = document.getElementById("login-help");
  help.textContent = AUTH === "jwt"
    ? "Paste a bearer token with the admin role. It is kept in this tab only and sent as the Authorization header."
    : "This service trusts tenancy headers (a gateway authenticates). Give the tenant, organisation and user the console acts for.";
  document.getElementById("login").addEventListener("submit", (e) => {
    e.preventDefault();
    const value = (id) => document.getElementById(id).value.trim();
    const c = AUTH === "jwt"
      ? { token: value("token"), org: value("org-jwt") }
      : { tenant: value("tenant"), org: value("org"), user: value("user") };
    sessionStorage.setItem(KEY, JSON.stringify(c));
    document.getElementById("token").value = "";
    // A new hash routes through `hashchange`; the same one is routed here.
    if (location.hash && location.hash !== "#") route();
    else location.hash = "#/subscriptions";
  });
  document.getElementById("disconnect").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    route();
  });
}

window.addEventListener("hashchange", route);
window.addEventListener("unhandledrejection", (e) => show(e.reason && e.reason.message ? e.reason.message : String(e.reason)));
setUpLogin();
route();
