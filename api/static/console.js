// pak web console: map of readers, live alerts (SSE), trails, who passed here, watchlist.
// No external resources: the machines it runs on may have no Internet access.
"use strict";
const $ = (id) => document.getElementById(id);
const NS = "http://www.w3.org/2000/svg";
// The session is an HttpOnly cookie the browser sends by itself; the CSRF token given at
// sign-in goes with every change (kept for this tab only).
let csrf = sessionStorage.getItem("pak-csrf") || "";
let readers = [];
let proj = null;

async function api(path, opts = {}) {
  const headers = Object.assign({"Accept": "application/json"}, opts.headers || {});
  if (opts.method && opts.method !== "GET") headers["X-CSRF-Token"] = csrf;
  if (opts.body && typeof opts.body !== "string") {
    headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(opts.body);
  }
  const r = await fetch(path, Object.assign({}, opts, {headers}));
  if (r.status === 401 && path !== "/api/v1/session") { askLogin(); throw new Error("请先登录 sign in first"); }
  const body = r.headers.get("content-type")?.includes("json") ? await r.json() : await r.text();
  if (!r.ok) throw new Error(body?.detail ? JSON.stringify(body.detail) : String(r.status));
  return body;
}

function askLogin(message = "") {
  $("login-error").textContent = message;
  const d = $("login");
  if (!d.open) d.showModal();
}
$("login-form").addEventListener("submit", async () => {
  try {
    const s = await api("/api/v1/session", {method: "POST",
      body: {user: $("login-user").value.trim(), password: $("login-password").value}});
    csrf = s.csrf_token;
    sessionStorage.setItem("pak-csrf", csrf);
    $("login-password").value = "";
    start();
  } catch (e) { askLogin(e.message); }
});
$("logout").addEventListener("click", async () => {
  try { await api("/api/v1/session", {method: "DELETE"}); } catch (e) { /* ended already */ }
  sessionStorage.removeItem("pak-csrf"); csrf = ""; askLogin();
});

function el(tag, attrs = {}, text) {
  const e = tag === "svg" || ["circle", "polyline", "line", "text", "g", "title"].includes(tag)
    ? document.createElementNS(NS, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmt(t) { return t ? new Date(t).toLocaleString() : "—"; }

function project(rs) {
  const pts = rs.filter((r) => r.latitude != null && r.longitude != null);
  if (!pts.length) return null;
  const lats = pts.map((r) => r.latitude), lons = pts.map((r) => r.longitude);
  const minLat = Math.min(...lats), maxLat = Math.max(...lats);
  const minLon = Math.min(...lons), maxLon = Math.max(...lons);
  const k = Math.cos((minLat + maxLat) / 2 * Math.PI / 180);  // equirectangular, true at mid-lat
  const w = Math.max((maxLon - minLon) * k, 1e-6), h = Math.max(maxLat - minLat, 1e-6);
  const s = Math.min(900 / w, 600 / h);
  return (lat, lon) => [50 + (lon - minLon) * k * s, 650 - (lat - minLat) * s];
}

function drawMap() {
  const svg = $("map");
  svg.replaceChildren();
  proj = project(readers);
  if (!proj) { $("map-note").textContent = "no reader positions yet"; return; }
  svg.append(el("g", {id: "overlay"}));
  const g = el("g", {id: "readers"});
  for (const r of readers) {
    if (r.latitude == null) continue;
    const [x, y] = proj(r.latitude, r.longitude);
    const c = el("circle", {cx: x, cy: y, r: 7, class: "reader", "data-id": r.reader_id});
    c.append(el("title", {}, `${r.name || r.reader_id} (${r.reader_id})`));
    c.addEventListener("click", () => showReader(r));
    g.append(c);
  }
  svg.append(g);
}

function readerDot(id) { return document.querySelector(`circle[data-id="${CSS.escape(id)}"]`); }

async function showReader(r) {
  $("detail-title").textContent = `Who passed ${r.name || r.reader_id}`;
  const reason = prompt("Reason for this query (recorded in the audit log):", "patrol check");
  if (!reason) return;
  const until = new Date(), since = new Date(until - 20 * 60 * 1000);
  try {
    const q = new URLSearchParams({since: since.toISOString(), until: until.toISOString(), reason});
    const rows = await api(`/api/v1/readers/${encodeURIComponent(r.reader_id)}/passes?${q}`);
    const t = el("table");
    t.append(el("tr", {}, ""));
    t.firstChild.append(el("th", {}, "tag"), el("th", {}, "first seen"), el("th", {}, "direction"));
    for (const p of rows.passes) {
      const tr = el("tr");
      const tag = el("td", {}, p.tag_id);
      tag.style.cursor = "pointer";
      tag.addEventListener("click", () => { $("trail-tag").value = p.tag_id; });
      tr.append(tag, el("td", {}, fmt(p.first_seen)),
        el("td", {}, p.direction ? `${p.direction.from}→${p.direction.towards}` : ""));
      t.append(tr);
    }
    $("detail").replaceChildren(rows.passes.length ? t : "nobody in the last 20 minutes");
  } catch (e) { $("detail").replaceChildren(el("span", {class: "err"}, e.message)); }
}

async function showTrail(tag, hours, reason, predicted = []) {
  const until = new Date(), since = new Date(until - hours * 3600 * 1000);
  const q = new URLSearchParams({since: since.toISOString(), until: until.toISOString(), reason, format: "json"});
  const trail = await api(`/api/v1/tags/${encodeURIComponent(tag)}/trail?${q}`);
  const ov = $("overlay");
  ov.replaceChildren();
  document.querySelectorAll(".reader.hot, .reader.pred").forEach((c) => c.classList.remove("hot", "pred"));
  const pos = Object.fromEntries(readers.map((r) => [r.reader_id, r]));
  let passes = 0, bad = 0;
  for (const trip of trail.trips) {
    const pts = trip.passes.map((p) => pos[p.reader_id]).filter((r) => r && r.latitude != null)
      .map((r) => proj(r.latitude, r.longitude).join(","));
    passes += trip.passes.length;
    if (pts.length > 1) ov.append(el("polyline", {points: pts.join(" "), class: "trail"}));
    for (const h of trip.hops) {
      if (!h.implausible) continue;
      bad += 1;
      const a = pos[h.from], b = pos[h.to];
      if (a?.latitude != null && b?.latitude != null) {
        const [x1, y1] = proj(a.latitude, a.longitude), [x2, y2] = proj(b.latitude, b.longitude);
        const line = el("line", {x1, y1, x2, y2, class: "hop-bad"});
        line.append(el("title", {}, h.reason || "implausible"));
        ov.append(line);
      }
    }
  }
  const last = trail.trips.at(-1)?.passes.at(-1);
  if (last) readerDot(last.reader_id)?.classList.add("hot");
  for (const p of predicted) readerDot(p.reader_id)?.classList.add("pred");
  $("map-note").textContent = `${tag}: ${passes} passes in ${trail.trips.length} trips` +
    (bad ? `, ${bad} implausible hops` : "");
}

$("trail-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    await showTrail($("trail-tag").value.toUpperCase(), Number($("trail-hours").value), $("trail-reason").value);
  } catch (e) { $("map-note").textContent = e.message; }
});

const alertItems = new Map();
function renderAlert(a) {
  let li = alertItems.get(a.alert_id);
  if (!li) {
    li = el("li");
    alertItems.set(a.alert_id, li);
    $("alerts").prepend(li);
    while ($("alerts").children.length > 100) $("alerts").lastChild.remove();
  }
  li.className = a.status === "new" ? "new" : "";
  const d = a.detail || {};
  const where = d.reader?.name || a.reader_id || "";
  const veh = d.vehicle ? ` · ${d.vehicle.plate || ""} ${d.vehicle.colour || ""} ${d.vehicle.kind || ""}` : "";
  li.replaceChildren(
    `${a.kind.replace("_", " ")} · ${a.tag_id || a.gateway_id || ""}${veh}`,
    el("div", {class: "meta"}, `${where} · ${fmt(a.at)} · ${a.status}` +
      (d.seen?.direction ? ` · heading ${d.seen.direction.towards}` : "") +
      (d.predicted_next?.length ? ` · next: ${d.predicted_next.map((p) => p.reader_id).join(", ")}` : "")));
  li.onclick = async () => {
    if (!a.tag_id) return;
    $("trail-tag").value = a.tag_id;
    try { await showTrail(a.tag_id, 6, `alert ${a.alert_id}`, d.predicted_next || []); }
    catch (e) { $("map-note").textContent = e.message; }
  };
}

function openStream() {
  // the session cookie goes with it: no credential in the URL
  const es = new EventSource("/api/v1/alerts/stream");
  es.addEventListener("alert", (ev) => renderAlert(JSON.parse(ev.data)));
  es.onopen = () => { $("feed").textContent = "● live"; $("feed").className = "ok"; };
  es.onerror = () => { $("feed").textContent = "○ live feed reconnecting…"; $("feed").className = "off"; };
}

async function refresh() {
  try {
    const s = await api("/api/v1/stats");
    $("stats").textContent = `${s.sightings} sightings · ${s.readers} readers · ` +
      `${s.gateways_online}/${s.gateways} gateways online · ${s.alerts_open} open alerts`;
    const gws = await api("/api/v1/gateways");
    $("gateways").replaceChildren(...gws.map((g) => el("li", {class: g.state === "online" ? "ok" : "off"},
      `${g.gateway_id} ${g.state || "?"} (${fmt(g.state_at)})`)));
    const wl = await api("/api/v1/watchlist");
    $("watchlist").replaceChildren(...wl.map((w) => {
      const li = el("li", {}, `${w.tag_id} · case ${w.case_no || "—"} `);
      const b = el("button", {type: "button"}, "recovered");
      b.onclick = async () => {
        await api(`/api/v1/watchlist/${encodeURIComponent(w.tag_id)}?status=recovered`, {method: "DELETE"});
        refresh();
      };
      li.append(b);
      return li;
    }));
  } catch (e) { $("stats").textContent = e.message; }
}

$("wl-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    await api("/api/v1/watchlist", {method: "POST",
      body: {tag_id: $("wl-tag").value.toUpperCase(), case_no: $("wl-case").value}});
    $("wl-tag").value = ""; $("wl-case").value = "";
    refresh();
  } catch (e) { alert(e.message); }
});

async function start() {
  try {
    const me = await api("/api/v1/me");
    $("user").textContent = me.user;
    readers = await api("/api/v1/readers");
    drawMap();
    for (const a of (await api("/api/v1/alerts?limit=50")).reverse()) renderAlert(a);
    openStream();
    refresh();
    setInterval(refresh, 5000);
  } catch (e) { $("stats").textContent = e.message; }
}
start();
