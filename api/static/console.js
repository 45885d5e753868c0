// pak web console: the map (Leaflet, served by the API), live alerts an officer acts on, trails
// with their timeline, who passed a reader, the watchlist. Every string comes from the message
// table (i18n.js); no resource comes from another site; no browser prompt()/alert().
"use strict";
const API = "/api/v1";
const $ = (id) => document.getElementById(id);
// The session is an HttpOnly cookie the browser sends by itself; the CSRF token given at
// sign-in goes with every change (kept for this tab only).
let csrf = sessionStorage.getItem("pak-csrf") || "";
let me = null;                 // {user, role}
let config = {timezone: "Asia/Shanghai", tile_url: null, roads_url: null};
let readers = new Map();       // reader_id -> reader record
const alerts = new Map();      // alert_id -> latest alert
const firstSeen = new Map();   // alert_id -> {at, reader_id} of the first revision seen here
let selected = null;           // alert_id shown in the detail panel
let map = null, readerLayer = null, overlay = null, stream = null, refreshTimer = null;
let lastView = null;           // the points the map was last fitted to (refitted on resize)

// What each role may do (mirrors the server's role table; the server still decides).
const CAN = {
  alerts: ["officer"],
  act: ["officer"],
  trail: ["officer", "analyst"],
  watch: ["officer"],
};
const can = (what) => !!me && CAN[what].includes(me.role);

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// A server error as a person reads it: the detail string, or one line per invalid field.
function readable(status, body) {
  if (body && "message" in body) body = {detail: body.detail ?? body.message};  // the API's error body
  if (status === 403) return t("err.forbidden") + (body?.detail ? `（${detailText(body.detail)}）` : "");
  if (status === 409) return body?.detail ? detailText(body.detail) : t("err.conflict");
  if (body?.detail) return detailText(body.detail);
  return t("err.server", {status});
}
function detailText(d) {
  if (typeof d === "string") return d;
  if (Array.isArray(d)) {
    return d.map((p) => [p.where ?? (p.loc || []).join("."), p.problem ?? p.msg]
      .filter(Boolean).join(": ")).join("；");
  }
  return typeof d === "object" && d.message ? d.message : JSON.stringify(d);
}

async function api(path, opts = {}) {
  const headers = Object.assign({"Accept": "application/json"}, opts.headers || {});
  if (opts.method && opts.method !== "GET") headers["X-CSRF-Token"] = csrf;
  let body = opts.body;
  if (body && typeof body !== "string") {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(API + path, Object.assign({}, opts, {headers, body}));
  } catch (e) {
    throw new ApiError(0, t("err.network"));
  }
  const type = r.headers.get("content-type") || "";
  const data = type.includes("json") ? await r.json().catch(() => null) : await r.text();
  if (r.status === 401 && path !== "/session") {
    askLogin(t("session.expired"));
    throw new ApiError(401, t("session.needed"));
  }
  if (!r.ok) throw new ApiError(r.status, readable(r.status, data));
  return data;
}

// --- times: the city's zone, "2026-12-03 15:42:07" ------------------------------------------
let timeFmt = null;
function makeTimeFormat() {
  timeFmt = new Intl.DateTimeFormat("en-CA", {
    timeZone: config.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23"});
}
function fmt(iso) {
  if (!iso) return t("field.unknown");
  const parts = Object.fromEntries(timeFmt.formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
}
function fmtClock(iso) { return iso ? fmt(iso).slice(11) : t("field.unknown"); }

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function toast(message, kind = "info") {
  const box = $("toast");
  box.textContent = message;
  box.className = kind;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

// --- dialogs (in-page; never prompt()/alert()) -----------------------------------------------
function askLogin(message = "") {
  $("login-error").textContent = message;
  const d = $("login");
  if (!d.open) d.showModal();
}

// ask(title, fields) -> values or null. A field: {name, label, type: text|select|textarea,
// options: [[value, label]], required, minlength}
function ask(title, fields = []) {
  return new Promise((resolve) => {
    const d = $("ask");
    $("ask-title").textContent = title;
    $("ask-error").textContent = "";
    const box = $("ask-fields");
    box.replaceChildren(...fields.map((f) => {
      let input;
      if (f.type === "select") {
        input = el("select", {name: f.name, required: f.required ? "" : null},
          ...f.options.map(([v, label]) => el("option", {value: v}, label)));
      } else if (f.type === "textarea") {
        input = el("textarea", {name: f.name, rows: 3, maxlength: 2000});
      } else {
        input = el("input", {name: f.name, required: f.required ? "" : null,
          minlength: f.minlength, maxlength: 200, autocomplete: "off"});
      }
      return el("label", {}, el("span", {}, f.label), input);
    }));
    const done = (value) => {
      $("ask-form").onsubmit = null; $("ask-cancel").onclick = null;
      d.close(); resolve(value);
    };
    $("ask-form").onsubmit = (ev) => {
      ev.preventDefault();
      const values = {};
      for (const f of fields) values[f.name] = box.querySelector(`[name="${f.name}"]`).value.trim();
      const short = fields.find((f) => f.minlength && values[f.name].length < f.minlength);
      if (short) { $("ask-error").textContent = t("reason.short"); return; }
      done(values);
    };
    $("ask-cancel").onclick = () => done(null);
    d.oncancel = () => done(null);
    d.showModal();
    box.querySelector("input,select,textarea")?.focus();
  });
}

// --- sign-in ---------------------------------------------------------------------------------
$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const s = await api("/session", {method: "POST",
      body: {user: $("login-user").value.trim(), password: $("login-password").value}});
    csrf = s.csrf_token;
    sessionStorage.setItem("pak-csrf", csrf);
    $("login-password").value = "";
    $("login").close();
    start();
  } catch (e) { $("login-error").textContent = e.message; }
});
$("logout").addEventListener("click", async () => {
  try { await api("/session", {method: "DELETE"}); } catch (e) { /* ended already */ }
  sessionStorage.removeItem("pak-csrf"); csrf = ""; me = null;
  if (stream) { stream.close(); stream = null; }
  setFeed("off");
  askLogin();
});
$("lang").addEventListener("click", () => {
  setLang(LANG === "zh-CN" ? "en" : "zh-CN");
  rerender();
});
$("panel-toggle").addEventListener("click", () => {
  document.body.classList.toggle("panel-open");
  setTimeout(() => map?.invalidateSize(), 50);
});

// --- the map ---------------------------------------------------------------------------------
function initMap() {
  if (map) return;
  map = L.map("map", {zoomControl: true, preferCanvas: false});
  if (config.tile_url) {
    L.tileLayer(config.tile_url, {maxZoom: 19}).addTo(map);
  } else if (config.roads_url) {
    fetch(config.roads_url, {headers: {Accept: "application/geo+json"}})
      .then((r) => (r.ok ? r.json() : null))
      .then((g) => {
        if (!g) return;
        L.geoJSON(g, {interactive: false, style: {color: "#9aa3ad", weight: 3, opacity: 0.9}})
          .addTo(map).bringToBack();
      });
  }
  readerLayer = L.layerGroup().addTo(map);
  overlay = L.layerGroup().addTo(map);
  // a phone turned, the panel folded: keep what was being shown in view
  map.on("resize", () => { if (lastView) map.fitBounds(lastView, {padding: [30, 30], maxZoom: 17, animate: false}); });
  map.on("zoomend", () => {
    $("map").classList.toggle("labels", map.getZoom() >= 15);
  });
}

function drawReaders() {
  readerLayer.clearLayers();
  const pts = [];
  for (const r of readers.values()) {
    if (r.latitude == null || r.longitude == null) continue;
    const ll = [r.latitude, r.longitude];
    pts.push(ll);
    const m = L.circleMarker(ll, {radius: 6, color: "#1f4e79", weight: 2, fillColor: "#5b9bd5",
      fillOpacity: 0.9, className: "reader-dot"});
    m.bindTooltip(r.name || r.reader_id, {permanent: true, direction: "right",
      className: "reader-label", offset: [6, 0]});
    m.on("click", () => readerPopup(r, m));
    m.addTo(readerLayer);
  }
  if (pts.length) {
    lastView = pts;
    map.fitBounds(pts, {padding: [20, 20]});
    $("map-note").textContent = "";
  } else {
    map.setView([31.23, 121.47], 12);
    $("map-note").textContent = t("map.noreaders");
  }
  $("map").classList.toggle("labels", map.getZoom() >= 15);
}

function readerPopup(r, marker) {
  const box = el("div", {class: "popup"}, el("strong", {}, r.name || r.reader_id),
    el("div", {class: "meta"}, r.reader_id));
  if (can("trail")) {
    box.append(el("button", {type: "button", onclick: () => showPasses(r)}, t("passes.query")));
  }
  marker.bindPopup(box).openPopup();
}

const readerName = (id) => readers.get(id)?.name || id || t("field.unknown");
const readerLL = (id) => {
  const r = readers.get(id);
  return r && r.latitude != null ? [r.latitude, r.longitude] : null;
};

// arrow head at the end of a hop, drawn as a small rotated triangle marker
function arrow(from, to, cls) {
  const p1 = map.project(from), p2 = map.project(to);
  const deg = Math.atan2(p2.y - p1.y, p2.x - p1.x) * 180 / Math.PI;
  const mid = [(from[0] + to[0]) / 2, (from[1] + to[1]) / 2];
  return L.marker(mid, {interactive: false, icon: L.divIcon({className: `arrow ${cls}`,
    html: `<span style="transform: rotate(${deg}deg)">➤</span>`, iconSize: [16, 16]})});
}

// --- compass words and directions -----------------------------------------------------------
function dirText(d) {
  if (!d) return t("field.unknown");
  return t("dir.from_to", {from: t(`compass.${d.from}`), to: t(`compass.${d.towards}`)});
}

// --- alerts ----------------------------------------------------------------------------------
let audioCtx = null;
function beep() {
  // a short two-tone WebAudio beep: no sound file to download
  try {
    audioCtx = audioCtx || new (window.AudioContext || window.webkitAudioContext)();
    const o = audioCtx.createOscillator(), g = audioCtx.createGain();
    o.type = "square"; o.frequency.value = 880;
    o.frequency.setValueAtTime(1320, audioCtx.currentTime + 0.12);
    g.gain.value = 0.08;
    o.connect(g).connect(audioCtx.destination);
    o.start(); o.stop(audioCtx.currentTime + 0.25);
  } catch (e) { /* no audio device: the highlight still shows */ }
}

function alertTitle(a) {
  return t(`kind.${a.kind}`);
}

function upsertAlert(a, {fresh = false} = {}) {
  const old = alerts.get(a.alert_id);
  if (old && (old.rev ?? 0) > (a.rev ?? 0)) return;  // an older revision arrived late
  if (!firstSeen.has(a.alert_id)) firstSeen.set(a.alert_id, {at: a.at, reader_id: a.reader_id});
  // the stream carries the alert message; keep what only the resource adds (history, first
  // sighting), but not a latest sighting that a newer hit has replaced
  const merged = Object.assign({}, old || {}, a);
  if (a.status == null) merged.status = old?.status ?? "new";  // null: unchanged (tracker update)
  const ref = a.sighting ? [a.sighting.gateway_id, a.sighting.spool_id, a.sighting.seq].join("/") : null;
  const had = merged.latest_sighting?.sighting?.join("/");
  if (!("latest_sighting" in a) && ref && had && had !== ref) delete merged.latest_sighting;
  alerts.set(a.alert_id, merged);
  const isNewHit = fresh && a.kind === "stolen_hit" && a.status === "new" &&
    (!old || old.rev !== a.rev);
  renderAlertItem(alerts.get(a.alert_id), isNewHit);
  if (isNewHit) beep();
  if (selected === a.alert_id) showAlert(a.alert_id, {refetch: false});
}

function renderAlertItem(a, highlight = false) {
  const list = $("alerts");
  let li = list.querySelector(`li[data-id="${CSS.escape(a.alert_id)}"]`);
  if (!li) {
    li = el("li", {"data-id": a.alert_id, tabindex: 0});
    list.prepend(li);
    while (list.children.length > 200) list.lastChild.remove();
    li.addEventListener("click", () => showAlert(li.dataset.id));
  }
  const d = a.detail || {};
  const veh = d.vehicle;
  li.className = `alert ${a.kind} status-${a.status}` + (highlight ? " flash" : "") +
    (selected === a.alert_id ? " selected" : "");
  li.replaceChildren(
    el("div", {class: "line1"}, el("span", {class: "kind"}, alertTitle(a)),
      el("span", {class: "badge"}, t(`status.${a.status}`))),
    el("div", {class: "line2"}, [a.tag_id || a.gateway_id || "", veh?.plate ? `${t("field.plate")} ${veh.plate}` : ""]
      .filter(Boolean).join(" · ")),
    el("div", {class: "meta"}, `${readerName(a.reader_id)} · ${fmt(a.last_at || d.seen?.last_seen || a.at)}`));
  $("alerts-none")?.remove();
}

// The first and the latest sighting of an alert, each with its own time and reader: from the
// alert resource (GET /alerts: first_sighting, latest_sighting) when it has them, else from
// the first revision this page saw and the latest hit's detail.
function firstAndLatest(a) {
  const d = a.detail || {};
  const fs = a.first_sighting, ls = a.latest_sighting;
  const seen = firstSeen.get(a.alert_id) || {at: a.at, reader_id: a.reader_id};
  return {
    first: fs ? {at: fs.first_seen, reader_id: fs.reader_id} : {at: a.at, reader_id: seen.reader_id},
    latest: ls ? {at: ls.last_seen, reader_id: ls.reader_id}
      : {at: d.seen?.last_seen || a.last_at || a.at, reader_id: d.reader?.reader_id || a.reader_id},
  };
}

function sightingLine(label, at, readerId) {
  return el("div", {class: "row"}, el("span", {class: "label"}, label),
    el("span", {}, `${fmt(at)} · ${readerName(readerId)}`));
}

async function showAlert(id, opts) {
  const refetch = opts?.refetch ?? true;
  selected = id;
  for (const li of $("alerts").children) li.classList.toggle("selected", li.dataset.id === id);
  if (refetch) {
    try { upsertAlert(await api(`/alerts/${encodeURIComponent(id)}`)); return; }
    catch (e) { toast(e.message, "err"); }
  }
  const a = alerts.get(id);
  if (!a) return;
  const d = a.detail || {};
  const {first, latest} = firstAndLatest(a);
  const body = [
    el("div", {class: "row title"}, el("strong", {}, alertTitle(a)),
      el("span", {class: `badge status-${a.status}`}, t(`status.${a.status}`))),
  ];
  if (a.tag_id) body.push(el("div", {class: "row"}, el("span", {class: "label"}, t("field.tag")), a.tag_id));
  if (d.vehicle) {
    const v = d.vehicle;
    body.push(el("div", {class: "row"}, el("span", {class: "label"}, t("field.vehicle")),
      [v.plate, tWord("colour", v.colour), tWord("veh", v.kind)].filter(Boolean).join(" ")));
  }
  if (d.case) body.push(el("div", {class: "row"}, el("span", {class: "label"}, t("field.case")), d.case));
  body.push(sightingLine(t("field.first"), first.at, first.reader_id));
  body.push(sightingLine(t("field.latest"), latest.at, latest.reader_id));
  if (a.kind === "stolen_hit") {
    body.push(el("div", {class: "row"}, el("span", {class: "label"}, t("field.direction")),
      dirText(d.seen?.direction)));
    const pred = d.predicted_next || [];
    if (pred.length) {
      body.push(el("div", {class: "row"}, el("span", {class: "label"}, t("field.predicted")),
        el("ul", {class: "pred"}, ...pred.map((p) => el("li", {},
          `${p.name || readerName(p.reader_id)} · ${t("field.eta",
            {time: fmtClock(p.expected_at), p: Math.round((p.probability || 0) * 100)})}`)))));
    }
  }
  $("alert-body").replaceChildren(...body);
  renderActions(a);
  const hist = a.history || [];
  $("alert-history").replaceChildren(...(hist.length ? hist.map((h) => el("li", {},
    `${fmt(h.at)} · ${h.actor} · ${t(`status.${h.to}`)}` + (h.note ? ` · ${historyNote(h.note)}` : "")))
    : [el("li", {class: "meta"}, t("alert.nohistory"))]));
  $("alert-detail").hidden = !can("alerts");
  drawAlertOnMap(a);
}

// The history's note as the use case writes it ("unit: 巡逻车 12; outcome: recovered; words"),
// its labels and outcome in the page's language; the officer's own words as written.
function historyNote(note) {
  return note.split("; ").map((part) => {
    const m = /^(unit|outcome): (.*)$/.exec(part);
    if (!m) return part;
    return m[1] === "unit" ? `${t("act.unit")}：${m[2]}` : `${t("act.outcome")}：${t(`outcome.${m[2]}`)}`;
  }).join("；");
}

function renderActions(a) {
  const box = $("alert-actions");
  box.replaceChildren();
  if (can("trail") && a.tag_id) {
    box.append(el("button", {type: "button", onclick: () => {
      $("trail-tag").value = a.tag_id; $("trail-reason").focus();
      document.body.classList.add("panel-open");
    }}, t("act.trail")));
  }
  if (!can("act") || a.status === "closed") return;
  const move = async (status, extra = {}) => {
    try {
      const updated = await api(`/alerts/${encodeURIComponent(a.alert_id)}/status`,
        {method: "POST", body: Object.assign({status}, extra)});
      upsertAlert(updated);
      toast(t("act.done", {status: t(`status.${status}`)}));
    } catch (e) { toast(e.message, "err"); }
  };
  if (a.status === "new") {
    box.append(el("button", {type: "button", class: "primary", "data-act": "acknowledge",
      onclick: async () => { if (await ask(t("act.confirm.ack"))) move("acknowledged"); }},
    t("act.acknowledge")));
  }
  if (a.status === "new" || a.status === "acknowledged") {
    box.append(el("button", {type: "button", "data-act": "dispatch", onclick: async () => {
      const v = await ask(t("act.dispatch"), [
        {name: "unit", label: t("act.unit"), required: true},
        {name: "note", label: t("act.note"), type: "textarea"}]);
      if (v) move("dispatched", {unit: v.unit, note: v.note || null});
    }}, t("act.dispatch")));
  }
  box.append(el("button", {type: "button", "data-act": "close", onclick: async () => {
    const v = await ask(t("act.close"), [
      {name: "outcome", label: t("act.outcome"), type: "select", required: true,
        options: ["recovered", "not_found", "false_alarm"].map((o) => [o, t(`outcome.${o}`)])},
      {name: "note", label: t("act.note"), type: "textarea"}]);
    if (v) move("closed", {outcome: v.outcome, note: v.note || null});
  }}, t("act.close")));
}

function drawAlertOnMap(a) {
  overlay.clearLayers();
  const d = a.detail || {};
  const here = d.reader?.latitude != null ? [d.reader.latitude, d.reader.longitude]
    : readerLL(a.reader_id);
  if (!here) return;
  // the red "stolen" mark only for a stolen alert's own position
  const mark = a.kind === "stolen_hit"
    ? L.circleMarker(here, {radius: 11, color: "#b00020", weight: 3, fillColor: "#e53935",
      fillOpacity: 0.85, className: "hit-mark"})
    : L.circleMarker(here, {radius: 10, color: "#8a6d00", weight: 3, fillOpacity: 0.3});
  mark.bindTooltip(`${alertTitle(a)} · ${fmtClock(d.seen?.last_seen || a.at)}`).addTo(overlay);
  for (const p of d.predicted_next || []) {
    const ll = p.latitude != null ? [p.latitude, p.longitude] : readerLL(p.reader_id);
    if (!ll) continue;
    L.polyline([here, ll], {color: "#f39c12", weight: 2, dashArray: "6 6"}).addTo(overlay);
    L.circleMarker(ll, {radius: 9, color: "#f39c12", weight: 3, fill: false,
      className: "pred-mark"})
      .bindTooltip(`${p.name || readerName(p.reader_id)} · ${t("field.eta",
        {time: fmtClock(p.expected_at), p: Math.round((p.probability || 0) * 100)})}`,
      {permanent: true, direction: "top", className: "eta-label"})
      .addTo(overlay);
  }
  // the hit and where it may go next, all in view
  const pts = [here, ...(d.predicted_next || []).map((p) => (p.latitude != null
    ? [p.latitude, p.longitude] : readerLL(p.reader_id))).filter(Boolean)];
  lastView = pts;
  map.fitBounds(pts, {padding: [60, 60], maxZoom: 17, animate: false});
}

// --- the live feed ---------------------------------------------------------------------------
function setFeed(state) {
  const f = $("feed");
  f.dataset.state = state;
  f.className = state === "live" ? "ok" : "off";
  f.textContent = t(`feed.${state}`);
}

async function loadOpenAlerts() {
  const open = await api("/alerts?status=new&status=acknowledged&status=dispatched&limit=200");
  for (const a of open.slice().reverse()) upsertAlert(a);
  if (!alerts.size) $("alerts").replaceChildren(el("li", {id: "alerts-none", class: "meta"}, t("alerts.none")));
}

function openStream() {
  if (stream) stream.close();
  setFeed("connecting");
  // the session cookie goes with it: no credential in the URL
  stream = new EventSource(`${API}/alerts/stream`);
  let opened = false;
  stream.addEventListener("alert", (ev) => upsertAlert(JSON.parse(ev.data), {fresh: true}));
  // "live" only when the server says it hears the broker
  stream.addEventListener("feed", (ev) => {
    const s = JSON.parse(ev.data);
    setFeed(s.live ? "live" : "nobroker");
  });
  stream.addEventListener("end", () => { stream.close(); setFeed("off"); askLogin(t("session.expired")); });
  stream.onopen = () => {
    // after a reconnect, fetch what is open: nothing missed while away stays unseen
    if (opened) loadOpenAlerts().catch((e) => toast(e.message, "err"));
    opened = true;
  };
  stream.onerror = () => setFeed(stream.readyState === EventSource.CLOSED ? "off" : "connecting");
}

// --- trails ----------------------------------------------------------------------------------
// The trail route answers GeoJSON (a Point per pass, a LineString per hop) or the older JSON
// of trips; either becomes {passes, hops}.
function trailParts(trail) {
  const passes = [], hops = [];
  if (trail.type === "FeatureCollection") {
    for (const f of trail.features) {
      const p = f.properties || {}, g = f.geometry || {};
      if (g.type === "Point") {
        passes.push({reader_id: p.reader_id, first_seen: p.first_seen, last_seen: p.last_seen,
          direction: p.direction, ll: [g.coordinates[1], g.coordinates[0]]});
      } else if (g.type === "LineString" && g.coordinates.length === 2) {
        hops.push({from: p.from ?? p.from_reader, to: p.to ?? p.to_reader, speed_kmh: p.speed_kmh,
          implausible: !!p.implausible, reason: p.reason, heading: p.heading,
          lls: g.coordinates.map((c) => [c[1], c[0]])});
      }
    }
  } else {
    for (const trip of trail.trips || []) {
      for (const p of trip.passes) passes.push(Object.assign({ll: readerLL(p.reader_id)}, p));
      for (const h of trip.hops) {
        hops.push(Object.assign({lls: [readerLL(h.from), readerLL(h.to)]}, h));
      }
    }
  }
  passes.sort((a, b) => (a.first_seen < b.first_seen ? -1 : 1));
  return {passes, hops};
}

async function showTrail(tag, hours, reason) {
  const until = new Date(), since = new Date(until - hours * 3600 * 1000);
  const q = new URLSearchParams({reason, since: since.toISOString(), until: until.toISOString()});
  const path = `/tags/${encodeURIComponent(tag)}/trail?${q}`;
  const trail = await api(path);
  const {passes, hops} = trailParts(trail);
  overlay.clearLayers();
  const hopInto = new Map();  // reader arrived at (index of pass) -> hop
  hops.forEach((h, i) => hopInto.set(i + 1, h));
  for (const h of hops) {
    if (!h.lls[0] || !h.lls[1]) continue;
    const cls = h.implausible ? "bad" : "ok";
    L.polyline(h.lls, {color: h.implausible ? "#b00020" : "#1565c0", weight: 4,
      dashArray: h.implausible ? "8 8" : null})
      .bindTooltip(h.implausible ? `${t("trail.implausible")} ${h.reason || ""}` :
        t("speed.kmh", {v: Math.round(h.speed_kmh ?? 0)})).addTo(overlay);
    arrow(h.lls[0], h.lls[1], cls).addTo(overlay);
  }
  passes.forEach((p, i) => {
    if (!p.ll) return;
    L.circleMarker(p.ll, {radius: 5, color: "#1565c0", fillOpacity: 1})
      .bindTooltip(`${i + 1}. ${fmtClock(p.first_seen)} ${readerName(p.reader_id)}`).addTo(overlay);
  });
  const pts = passes.map((p) => p.ll).filter(Boolean);
  if (pts.length) {
    lastView = pts;
    map.fitBounds(pts, {padding: [30, 30], maxZoom: 16, animate: false});
  }
  // the timeline: one row per pass, the hop that led there beside it
  const byPair = new Map(hops.map((h) => [`${h.from}>${h.to}`, h]));
  const rows = passes.map((p, i) => {
    const prev = passes[i - 1];
    const h = prev ? byPair.get(`${prev.reader_id}>${p.reader_id}`) : null;
    return el("tr", {class: h?.implausible ? "implausible" : ""},
      el("td", {}, fmt(p.first_seen)), el("td", {}, readerName(p.reader_id)),
      // the station's own antennas tell the direction; else the hop that led here does
      el("td", {}, p.direction ? dirText(p.direction)
        : h?.heading ? t("dir.towards", {to: t(`compass.${h.heading}`)}) : t("field.unknown")),
      el("td", {title: h?.implausible ? t("trail.implausible") : ""},
        h ? t("speed.kmh", {v: Math.round(h.speed_kmh ?? 0)}) + (h.implausible ? " ⚠" : "") : ""));
  });
  $("timeline").tBodies[0].replaceChildren(...rows);
  $("timeline").hidden = !rows.length;
  const bad = hops.filter((h) => h.implausible).length;
  $("map-note").textContent = passes.length
    ? t("trail.summary", {tag, trips: trail.trips ? trail.trips.length :
      new Set((trail.features || []).map((f) => f.properties?.trip)).size || 1,
    passes: passes.length, bad})
    : t("trail.none", {tag});
  $("export-geojson").href = `${API}${path}`;
  $("export-csv").href = `${API}${path}&format=csv`;
  $("trail-exports").hidden = !passes.length;
}

$("trail-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const reason = $("trail-reason").value.trim();
  if (reason.length < 4) { toast(t("reason.short"), "err"); return; }
  try {
    await showTrail($("trail-tag").value.trim().toUpperCase(), Number($("trail-hours").value) || 24,
      reason);
  } catch (e) { toast(e.message, "err"); }
});

// --- who passed a reader (reason asked in-page, never pre-filled) ----------------------------
async function showPasses(r) {
  const v = await ask(t("passes.title", {reader: r.name || r.reader_id}),
    [{name: "reason", label: t("reason"), required: true, minlength: 4}]);
  if (!v) return;
  const until = new Date(), since = new Date(until - 20 * 60 * 1000);
  const q = new URLSearchParams({since: since.toISOString(), until: until.toISOString(),
    reason: v.reason});
  try {
    const rows = await api(`/readers/${encodeURIComponent(r.reader_id)}/passes?${q}`);
    const list = rows.passes || rows;
    const box = el("div", {class: "popup"}, el("strong", {}, t("passes.title", {reader: r.name || r.reader_id})));
    if (!list.length) box.append(el("div", {}, t("passes.none")));
    for (const p of list.slice(0, 50)) {
      box.append(el("div", {class: "row link", onclick: () => { $("trail-tag").value = p.tag_id; }},
        `${fmtClock(p.first_seen)} · ${p.tag_id} · ${dirText(p.direction)}`));
    }
    L.popup().setLatLng([r.latitude, r.longitude]).setContent(box).openOn(map);
  } catch (e) { toast(e.message, "err"); }
}

// --- watchlist, gateways, numbers ------------------------------------------------------------
async function refresh() {
  try {
    const s = await api("/stats");
    $("stats").textContent = t("stats.line", {sightings: s.sightings, readers: s.readers,
      online: s.gateways_online, gateways: s.gateways, open: s.alerts_open});
  } catch (e) { $("stats").textContent = e.message; }
  try {
    const gws = await api("/gateways");
    $("gateways").replaceChildren(...gws.map((g) => el("li", {class: g.state === "online" ? "ok" : "off"},
      `${g.gateway_id} · ${t(g.state === "online" ? "gw.online" : "gw.offline")} · ${fmt(g.state_at)}`)));
  } catch (e) { $("gateways").replaceChildren(el("li", {class: "err"}, e.message)); }
  if (!can("watch")) return;
  try {
    const wl = await api("/watchlist");
    $("watchlist").replaceChildren(...wl.map((w) => el("li", {},
      `${w.tag_id} · ${t("watch.case_label", {case: w.case_no || t("field.unknown")})} `,
      el("button", {type: "button", onclick: () => withdraw(w)}, t("watch.withdraw")))));
  } catch (e) { $("watchlist").replaceChildren(el("li", {class: "err"}, e.message)); }
}

async function withdraw(w) {
  const v = await ask(t("watch.withdraw.title", {tag: w.tag_id}), [
    {name: "outcome", label: t("act.outcome"), type: "select", required: true,
      options: ["recovered", "withdrawn"].map((o) => [o, t(`withdraw.${o}`)])}]);
  if (!v) return;
  try {
    await api(`/watchlist/${encodeURIComponent(w.tag_id)}?status=${encodeURIComponent(v.outcome)}`,
      {method: "DELETE"});
    refresh();
  } catch (e) { toast(e.message, "err"); }
}

$("wl-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    await api("/watchlist", {method: "POST",
      body: {tag_id: $("wl-tag").value.trim().toUpperCase(), case_no: $("wl-case").value.trim()}});
    $("wl-tag").value = ""; $("wl-case").value = "";
    refresh();
  } catch (e) { toast(e.message, "err"); }
});

// --- start -----------------------------------------------------------------------------------
function applyRole() {
  for (const s of document.querySelectorAll("[data-needs]")) {
    // the alert detail stays hidden until an alert is chosen
    s.hidden = !can(s.dataset.needs) || (s.id === "alert-detail" && !selected);
  }
  $("user").textContent = me ? `${me.user}（${t(`role.${me.role}`)}）` : "—";
}

function rerender() {
  $("lang").textContent = t("lang.switch");
  applyRole();
  setFeed($("feed").dataset.state || "off");
  for (const a of alerts.values()) renderAlertItem(a);
  if (selected) showAlert(selected, {refetch: false});
  refresh();
}

async function start() {
  try {
    me = await api("/session");
  } catch (e) { askLogin(e.status === 401 ? "" : e.message); return; }
  try {
    config = Object.assign(config, await api("/console/config"));
  } catch (e) { /* defaults: Asia/Shanghai, no base map */ }
  makeTimeFormat();
  applyRole();
  initMap();
  try {
    readers = new Map((await api("/readers")).map((r) => [r.reader_id, r]));
  } catch (e) { toast(e.message, "err"); }
  drawReaders();
  if (can("alerts")) {
    try { await loadOpenAlerts(); } catch (e) { toast(e.message, "err"); }
    openStream();
  }
  refresh();
  clearInterval(refreshTimer);
  refreshTimer = setInterval(refresh, 10000);
}

applyLang();
$("lang").textContent = t("lang.switch");
makeTimeFormat();
applyRole();
setFeed("off");
start();
