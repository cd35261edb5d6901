// The hookwarden console: a page that reads the admin API (/api) and refreshes itself.
// Everything shown comes from the API as text: nothing from a payload is ever parsed as
// HTML (textContent only), since event ids and bodies are the providers' bytes.
"use strict";

const TOKEN_KEY = "hookwarden.admin-token";
const REFRESH_MS = 3000;
const OUTCOMES = [
  "delivered", "queued", "duplicate", "handshake", "in_flight", "not_found", "method_not_allowed",
  "forbidden", "rate_limited", "payload_too_large", "unauthorized", "missing_signature",
  "invalid_timestamp", "timestamp_out_of_tolerance", "invalid_signature", "malformed_payload",
  "upstream_rejected", "upstream_unavailable", "upstream_timeout", "queue_unavailable",
  "store_unavailable", "overloaded",
];
const GOOD = new Set(["delivered", "queued", "duplicate", "handshake"]);
const WARN = new Set(["upstream_rejected", "upstream_unavailable", "upstream_timeout",
  "queue_unavailable", "store_unavailable", "overloaded", "rate_limited", "in_flight"]);

// Rows shown per page of the recent requests and of the queued events.
const PAGE = 20;

const state = {
  detail: null, timer: null, busy: false,
  // The requests page shown (0: newest); the events pages' cursors (the first is null).
  requestsPage: 0, eventsCursors: [null], pending: null,
  // What the last action did, kept on the status line for a while across refreshes.
  notice: null,
};
const NOTICE_MS = 15000;

function notify(text) {
  state.notice = { text, until: Date.now() + NOTICE_MS };
  status(text);
}
const $ = (id) => document.getElementById(id);

class NeedsToken extends Error {}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

async function api(method, path) {
  const headers = { Accept: "application/json" };
  const t = token();
  if (t) headers.Authorization = "Bearer " + t;
  const response = await fetch(path, { method, headers, cache: "no-store" });
  if (response.status === 401) throw new NeedsToken();
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.message || body.error || String(response.status));
  return body;
}

// A DOM element: `props` sets attributes (and `text`), `children` are nodes or strings.
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function kind(outcome) {
  if (GOOD.has(outcome)) return "good";
  if (WARN.has(outcome)) return "warn";
  return "bad";
}

function badge(outcome) {
  return el("span", { class: "outcome " + kind(outcome), "data-outcome": outcome, text: outcome });
}

// Every time on the page is a date and a time in UTC, the zone of the API and the logs,
// so that a row reads the same to everyone and beside a log line.
function time(text) {
  if (!text) return "—";
  const at = new Date(text);
  return isNaN(at) ? text : at.toISOString().slice(0, 19).replace("T", " ");
}

function ago(text) {
  if (!text) return "never";
  const seconds = Math.max(0, Math.round((Date.now() - new Date(text)) / 1000));
  if (seconds < 60) return seconds + " s ago";
  if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
  return Math.round(seconds / 3600) + " h ago";
}

function status(message, error = false) {
  const line = $("status");
  line.textContent = message;
  line.className = error ? "error" : "";
}

// Replaces a table body's rows, keeping keyboard focus on the same button if it is
// still there (the page refreshes while someone tabs through it).
function fill(tbody, rows) {
  const focused = document.activeElement;
  const key = focused && tbody.contains(focused) ? focused.dataset.key : null;
  tbody.replaceChildren(...rows);
  if (key) {
    const again = tbody.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again) again.focus();
  }
}

function fillSelect(select, values) {
  const current = select.value;
  const options = [el("option", { value: "", text: "all" })];
  for (const v of values) options.push(el("option", { value: v, text: v }));
  select.replaceChildren(...options);
  select.value = values.includes(current) ? current : "";
}

// A bar of `counts` coloured by `kindOf` (good, warn, bad), with the counts in words.
function bars(counts, kindOf = kind, none = "no requests") {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const bar = el("div", { class: "bars", role: "img" });
  const parts = { good: 0, warn: 0, bad: 0 };
  for (const [outcome, n] of Object.entries(counts)) parts[kindOf(outcome)] += n;
  for (const k of ["good", "warn", "bad"]) {
    if (!parts[k]) continue;
    const part = el("span", { class: k });
    // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
    part.style.width = `${(100 * parts[k]) / total}%`;
    bar.append(part);
  }
  const named = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([o, n]) => `${n} ${o}`);
  bar.setAttribute("aria-label", named.join(", ") || none);
  bar.title = named.join(", ") || none;
  return el("div", {}, bar, el("div", { class: "counts", text: named.join(" · ") || none }));
}

const ATTEMPT_KIND = { delivered: "good", failed: "warn", dead_lettered: "bad" };

// The app fails now: the route's last failure is the app's, and came after its last
// delivery. A queue route answers providers "queued" while its app is down, so its
// requests alone would look healthy.
function appFailing(r) {
  const f = r.last_failure;
  if (!f || !f.outcome.startsWith("upstream_")) return false;
  return !r.last_delivered_at || new Date(f.at) > new Date(r.last_delivered_at);
}

// Runs a change through the API, then says what it did and refreshes.
async function act(method, path, said) {
  try {
    const answer = await api(method, path);
    notify(said(answer));
    await refresh();
  } catch (e) {
    handle(e);
  }
}

// A bulk action waits for the person to confirm it in the page.
function confirmFirst(text, label, action) {
  state.pending = action;
  $("confirm-text").textContent = text;
  $("confirm-yes").textContent = label;
  $("confirm").hidden = false;
  $("confirm-yes").focus();
}

function closeConfirm() {
  state.pending = null;
  $("confirm").hidden = true;
}

const routePath = (route, lever) => `/api/routes/${encodeURIComponent(route)}/${lever}`;

function redeliverDead(route, dead) {
  confirmFirst(`Put all ${dead} dead letter(s) of ${route} back in the queue? Each is attempted again from its first attempt.`,
    "Redeliver all", () => act("POST", "/api/dead-letters/redeliver?route=" + encodeURIComponent(route),
      (a) => `${a.redelivered} dead letter(s) of ${route} back in the queue`));
}

function retryNow(route, pending) {
  confirmFirst(`Attempt now every event of ${route} that waits for its next attempt (${pending} pending)?`,
    "Retry now", () => act("POST", routePath(route, "retry-now"),
      (a) => `${a.rescheduled} event(s) of ${route} attempted now`));
}

function pause(route, paused) {
  act("POST", routePath(route, paused ? "pause" : "resume"),
    (a) => a.paused ? `${route} paused: events are stored, none is attempted` : `${route} resumed: delivering`);
}

function renderRoutes(routes) {
  const rows = routes.map((r) => {
    const q = r.queue;
    const queue = q
      ? `pending ${q.pending} · dead ${q.dead}` + (q.pending ? ` · oldest ${Math.round(q.oldest_pending_seconds)} s` : "")
      : "—";
    const paused = q && q.paused ? el("span", { class: "outcome paused", "data-paused": "", text: "paused" }) : null;
    const failure = r.last_failure
      ? el("span", {}, badge(r.last_failure.outcome), ` ${r.last_failure.status ?? ""} `, el("span", { class: "counts", text: ago(r.last_failure.at) }))
      : "none";
    const actions = el("div", { class: "actions" });
    if (q) {
      actions.append(el("button", { type: "button", "data-key": "pause:" + r.name, "data-lever": q.paused ? "resume" : "pause",
        onclick: () => pause(r.name, !q.paused), text: q.paused ? "Resume" : "Pause" }));
      if (q.pending > 0) {
        actions.append(el("button", { type: "button", "data-key": "retry:" + r.name, "data-lever": "retry-now",
          onclick: () => retryNow(r.name, q.pending), text: "Retry now" }));
      }
      if (q.dead > 0) {
        actions.append(el("button", { type: "button", "data-key": "dead:" + r.name, "data-lever": "redeliver-dead",
          onclick: () => redeliverDead(r.name, q.dead), text: "Redeliver all dead letters" }));
      }
    }
    return el("tr", { "data-route": r.name },
      el("td", {}, el("code", { text: r.name }), el("div", { class: "counts", text: r.path })),
      el("td", { class: "wide", text: r.provider }),
      el("td", { text: r.delivery }),
      el("td", {}, bars(r.requests),
        q ? el("div", { class: "deliveries" }, el("div", { class: "counts", text: "deliveries to the app:" }),
          bars(q.attempts, (result) => ATTEMPT_KIND[result] || "bad", "no attempts yet")) : null,
        appFailing(r) ? el("span", { class: "outcome warn", "data-app-failing": "", text: "the app is failing" }) : null),
      el("td", { "data-queue": "" }, queue, paused ? " " : null, paused),
      el("td", { class: "wide", text: ago(r.last_delivered_at) }),
      el("td", {}, failure),
      el("td", {}, actions));
  });
  fill($("routes").tBodies[0], rows);
  const names = routes.map((r) => r.name);
  fillSelect($("requests-route"), names);
  fillSelect($("events-route"), routes.filter((r) => r.queue).map((r) => r.name));
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const text = q.toString();
  return text ? "?" + text : "";
}

function renderRequests(requests) {
  // The API gives the newest first; this page is the rows after the pages before it.
  const start = state.requestsPage * PAGE;
  const more = requests.length > start + PAGE;
  requests = requests.slice(start, start + PAGE);
  $("requests-newer").disabled = state.requestsPage === 0;
  $("requests-older").disabled = !more;
  $("requests-page").textContent = requests.length
    ? `requests ${start + 1}–${start + requests.length}` : "";
  const rows = requests.map((r) => el("tr", { "data-outcome": r.outcome },
    el("td", { class: "time", text: time(r.at) }),
    el("td", {}, el("code", { text: r.route })),
    el("td", {}, badge(r.outcome)),
    el("td", { class: "num", text: r.status }),
    el("td", { class: "mono id", text: r.event_id ?? (r.event_ids ? r.event_ids.join(", ") : "—") }),
    el("td", { class: "wide", text: r.type ?? "—" }),
    el("td", { class: "num wide", text: r.duration_ms.toFixed(1) }),
    el("td", { class: "mono wide", text: r.peer })));
  fill($("requests").tBodies[0], rows.length ? rows : [el("tr", {}, el("td", { colspan: 8, text: "No requests match." }))]);
}

function renderEvents(events, next) {
  const page = state.eventsCursors.length;
  $("events-newest").disabled = page === 1;
  $("events-older").disabled = !next;
  $("events-older").dataset.next = next || "";
  $("events-page").textContent = events.length ? `page ${page}` : "";
  const rows = events.map((e) => {
    const key = e.route + "/" + e.id;
    return el("tr", { "data-id": e.id, "data-state": e.state },
      el("td", { class: "time", text: time(e.received_at) }),
      el("td", {}, el("code", { text: e.route })),
      el("td", { class: "mono id", text: e.id }),
      el("td", { class: "wide", text: e.type }),
      el("td", {}, el("span", { class: "outcome " + (e.state === "dead" ? "bad" : e.state === "pending" ? "warn" : "good"), text: e.state })),
      el("td", { class: "num", text: e.attempts }),
      el("td", { class: "time wide", text: e.next_attempt_at ? time(e.next_attempt_at) : "—" }),
      el("td", { text: e.last_status ?? e.last_error ?? "—" }),
      el("td", {}, el("button", { type: "button", "data-key": "open:" + key, onclick: () => open(e.route, e.id), text: "Open" })));
  });
  fill($("events").tBodies[0], rows.length ? rows : [el("tr", {}, el("td", { colspan: 9, text: "No queued events match." }))]);
}

async function open(route, id) {
  state.detail = { route, id };
  await renderDetail();
  $("detail").hidden = false;
  $("redeliver").focus();
}

async function renderDetail() {
  if (!state.detail) return;
  const { route, id } = state.detail;
  const e = await api("GET", `/api/events/${encodeURIComponent(route)}/${encodeURIComponent(id)}`);
  $("detail-title").textContent = `Event ${e.id}`;
  const facts = [["Route", e.route], ["Type", e.type], ["State", e.state], ["Attempts", e.attempts],
    ["Received (UTC)", time(e.received_at)], ["Next attempt (UTC)", time(e.next_attempt_at)],
    ["Last answer", e.last_status ?? e.last_error ?? "—"]];
  $("detail-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { "data-fact": k, text: v })]));
  $("detail").dataset.state = e.state;
  // A pending event waiting for its next attempt can be attempted now; one being
  // attempted cannot be hurried (the API answers 409 then).
  const redeliver = $("redeliver");
  redeliver.textContent = e.state === "pending" ? "Attempt now" : "Redeliver";
  redeliver.title = e.state === "pending" ? "Attempt it now instead of at its next attempt time" : "";
  fill($("history").tBodies[0], e.history.map((a) => el("tr", {},
    el("td", { class: "time", text: time(a.at) }), el("td", { text: a.status ?? "—" }),
    el("td", { text: a.error ?? "" }), el("td", { class: "num", text: a.duration_ms }),
    el("td", { class: "answer mono", text: a.response ?? "—" }))));
  $("detail-body").textContent = typeof e.body === "string" ? e.body : JSON.stringify(e.body, null, 2);
}

async function redeliverOne() {
  if (!state.detail) return;
  const { route, id } = state.detail;
  try {
    await api("POST", `/api/events/${encodeURIComponent(route)}/${encodeURIComponent(id)}/redeliver`);
    notify(`${id}: attempted again now`);
    await refresh();
  } catch (e) {
    handle(e);
  }
}

function handle(e) {
  if (e instanceof NeedsToken) {
    signIn(token() ? "The gateway refused this token." : null);
  } else {
    status("The admin API failed: " + e.message, true);
  }
}

function signIn(error) {
  sessionStorage.removeItem(TOKEN_KEY);
  stop();
  $("console").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  const message = $("sign-in-error");
  message.hidden = !error;
  message.textContent = error || "";
  status("Sign in to see this gateway.");
  $("token").focus();
}

async function refresh() {
  if (state.busy) return;
  state.busy = true;
  try {
    const routes = await api("GET", "/api/routes");
    renderRoutes(routes.routes);
    // One row past the page, to know whether an older page exists.
    const requests = await api("GET", "/api/requests" + query({
      route: $("requests-route").value, outcome: $("requests-outcome").value,
      limit: (state.requestsPage + 1) * PAGE + 1 }));
    renderRequests(requests.requests);
    const cursor = state.eventsCursors[state.eventsCursors.length - 1];
    const events = await api("GET", "/api/events" + query({
      route: $("events-route").value, state: $("events-state").value, limit: PAGE, cursor }));
    renderEvents(events.events, events.next);
    if (state.detail) await renderDetail();
    $("sign-in").hidden = true;
    $("console").hidden = false;
    $("sign-out").hidden = !token();
    const updated = `Updated ${time(new Date().toISOString()).slice(11)} UTC; refreshes every ${REFRESH_MS / 1000} s`;
    const notice = state.notice && Date.now() < state.notice.until ? state.notice.text : null;
    status(notice ? `${notice}. ${updated}` : updated);
    start();
  } catch (e) {
    handle(e);
  } finally {
    state.busy = false;
  }
}

function start() {
  if (!state.timer) state.timer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
}

function stop() {
  clearInterval(state.timer);
  state.timer = null;
}

document.addEventListener("DOMContentLoaded", () => {
  fillSelect($("requests-outcome"), OUTCOMES);
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value);
    $("token").value = "";
    refresh();
  });
  $("sign-out").addEventListener("click", () => signIn(null));
  $("refresh").addEventListener("click", refresh);
  $("redeliver").addEventListener("click", redeliverOne);
  $("close-detail").addEventListener("click", () => {
    state.detail = null;
    $("detail").hidden = true;
  });
  for (const id of ["requests-route", "requests-outcome"]) {
    $(id).addEventListener("change", () => { state.requestsPage = 0; refresh(); });
  }
  for (const id of ["events-route", "events-state"]) {
    $(id).addEventListener("change", () => { state.eventsCursors = [null]; refresh(); });
  }
  $("requests-newer").addEventListener("click", () => { state.requestsPage = Math.max(0, state.requestsPage - 1); refresh(); });
  $("requests-older").addEventListener("click", () => { state.requestsPage += 1; refresh(); });
  $("events-newest").addEventListener("click", () => { state.eventsCursors = [null]; refresh(); });
  $("events-older").addEventListener("click", () => {
    const next = $("events-older").dataset.next;
    if (next) { state.eventsCursors.push(next); refresh(); }
  });
  $("confirm-yes").addEventListener("click", () => {
    const action = state.pending;
    closeConfirm();
    if (action) action();
  });
  $("confirm-no").addEventListener("click", () => { closeConfirm(); notify("Nothing changed."); });
  document.addEventListener("keydown", (event) => {
    const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName);
    if (event.key === "r" && !typing && !event.ctrlKey && !event.metaKey) refresh();
    if (event.key === "Escape" && state.pending) $("confirm-no").click();
    else if (event.key === "Escape" && state.detail) $("close-detail").click();
  });
  refresh();
});
