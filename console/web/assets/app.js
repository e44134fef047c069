// KafScale console page. Every name that comes from the cluster (topics, groups, client ids,
// hosts, keys, values) enters the DOM through text nodes only (el() below), never as HTML.
// Every URL is relative, so the console works under any path prefix.
"use strict";

const REFRESH_MS = 5000;
let refreshTimer = null;
let renderSeq = 0;

// el builds an element: attrs are set as attributes or properties, children are nodes or
// strings (which become text nodes, never markup).
function el(tag, attrs, ...children) {
  const svg = tag.startsWith("svg:");
  const e = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "onclick" || k === "onsubmit" || k === "onchange") e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return e;
}

const $ = (id) => document.getElementById(id);
const unknown = (why) => el("span", { class: "unknown", title: why || null }, "unknown");
const fmtInt = (n) => (n === null || n === undefined ? unknown() : Number(n).toLocaleString("en-US"));
function fmtBytes(n) {
  if (n === null || n === undefined) return unknown();
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = Number(n);
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? String(Math.round(v)) : v.toFixed(1)) + " " + units[i];
}
// txt is the text of a formatted value, whether a string or an "unknown" element.
const txt = (v) => (typeof v === "string" ? v : v.textContent);
const fmtRate = (n) => (n === null || n === undefined ? unknown() : Number(n).toFixed(1) + "/s");
const fmtTime = (s) => (s ? new Date(s).toLocaleString() : unknown());
function fmtAge(seconds) {
  if (seconds === null || seconds === undefined) return unknown();
  const s = Math.round(seconds);
  if (s < 120) return s + " s";
  if (s < 7200) return Math.round(s / 60) + " min";
  return (s / 3600).toFixed(1) + " h";
}
// numCell is a numeric table cell; data-value holds the raw number, or "unknown".
function numCell(v, fmt) {
  const known = v !== null && v !== undefined;
  return el("td", { class: "num", "data-value": known ? String(v) : "unknown" }, (fmt || fmtInt)(v));
}

class HTTPError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function request(path, opts) {
  let resp;
  try {
    resp = await fetch(path, Object.assign({ credentials: "same-origin", headers: { Accept: "application/json" } }, opts || {}));
  } catch (err) {
    showBanner("The console is unreachable: " + err.message);
    throw err;
  }
  hideBanner();
  let body = null;
  if (resp.status !== 204) {
    try { body = await resp.json(); } catch (_) { body = null; }
  }
  if (!resp.ok) throw new HTTPError(resp.status, (body && body.error) || resp.statusText);
  return body;
}

// api reads a protected endpoint; a refusal means the session is gone: back to the login.
async function api(path) {
  try {
    return await request("api/" + path);
  } catch (err) {
    if (err instanceof HTTPError && (err.status === 401 || err.status === 503)) {
      showLogin(err.status === 503);
      throw new Error("logged out");
    }
    throw err;
  }
}

function showBanner(text) { const b = $("banner"); b.textContent = text; b.hidden = false; }
function hideBanner() { $("banner").hidden = true; }

// --- login ---------------------------------------------------------------------------------

function showLogin(unconfigured) {
  stopRefresh();
  $("view").hidden = true;
  $("view").replaceChildren();
  $("nav").hidden = true;
  $("user").hidden = true;
  $("login").hidden = false;
  $("login-warning").hidden = !unconfigured;
  $("login-submit").disabled = !!unconfigured;
  $("login-password").value = "";
}

async function submitLogin(ev) {
  ev.preventDefault();
  const err = $("login-error");
  err.hidden = true;
  const body = JSON.stringify({ username: $("login-username").value, password: $("login-password").value });
  let resp;
  try {
    resp = await fetch("auth/login", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body });
  } catch (e) {
    err.textContent = "The console is unreachable: " + e.message;
    err.hidden = false;
    return;
  }
  if (resp.status === 204) {
    $("login-password").value = "";
    await start();
    return;
  }
  if (resp.status === 429) {
    err.textContent = "Too many failed logins. Try again in " + (resp.headers.get("Retry-After") || "a few") + " s.";
  } else if (resp.status === 503) {
    showLogin(true);
    return;
  } else {
    err.textContent = "Wrong username or password.";
  }
  err.hidden = false;
}

async function logout() {
  stopRefresh();
  try { await request("auth/logout", { method: "POST" }); } catch (_) { /* the cookie is gone either way */ }
  showLogin(false);
}

async function start() {
  let st;
  try { st = await request("auth/status"); } catch (_) { return; }
  if (!st.loginConfigured) { showLogin(true); return; }
  if (!st.authenticated) { showLogin(false); return; }
  $("login").hidden = true;
  $("nav").hidden = false;
  $("user").hidden = false;
  $("username").textContent = st.username;
  $("view").hidden = false;
  render();
}

// --- routing and live refresh --------------------------------------------------------------

function route() {
  const h = location.hash.replace(/^#\/?/, "");
  const [path, query] = h.split("?");
  const parts = path.split("/");
  return { page: parts[0] || "overview", arg: parts.length > 1 ? decodeURIComponent(parts.slice(1).join("/")) : null, params: new URLSearchParams(query || "") };
}

function stopRefresh() {
  if (refreshTimer) clearTimeout(refreshTimer);
  refreshTimer = null;
}

async function render() {
  stopRefresh();
  if ($("view").hidden) return;
  const seq = ++renderSeq;
  const r = route();
  const pages = { overview: overviewPage, topics: topicsPage, topic: topicPage, groups: groupsPage, group: groupPage, records: recordsPage };
  const page = pages[r.page] || overviewPage;
  let content;
  try {
    content = await page(r);
  } catch (err) {
    if (err.message === "logged out") return;
    content = el("p", { class: "error" }, "Could not load this page: " + err.message);
  }
  if (seq !== renderSeq || $("view").hidden) return;
  if (content) {
    $("view").replaceChildren(content);
    $("updated").textContent = "Updated " + new Date().toLocaleTimeString() + (page.live === false ? "" : " · refreshes every " + REFRESH_MS / 1000 + " s");
  }
  for (const a of document.querySelectorAll("nav a")) {
    const pageOf = { topic: "topics", group: "groups" }[r.page] || r.page;
    a.classList.toggle("active", a.dataset.route === pageOf);
  }
  if (page.live !== false) refreshTimer = setTimeout(render, REFRESH_MS);
}

// --- charts --------------------------------------------------------------------------------

// chart draws series over time as SVG lines; null values are gaps, never zeros.
function chart(id, title, times, series, fmt) {
  const W = 560, H = 200, L = 64, R = 10, T = 10, B = 24;
  const svg = el("svg:svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  let maxV = 0;
  for (const s of series) for (const v of s.values) if (v !== null && v > maxV) maxV = v;
  if (maxV === 0) maxV = 1;
  const t0 = times.length ? times[0] : 0;
  const t1 = times.length > 1 ? times[times.length - 1] : t0 + 1;
  const x = (t) => L + ((t - t0) / (t1 - t0 || 1)) * (W - L - R);
  const y = (v) => T + (1 - v / maxV) * (H - T - B);
  svg.appendChild(el("svg:line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
  svg.appendChild(el("svg:line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
  for (const f of [0, 0.5, 1]) {
    svg.appendChild(el("svg:text", { class: "tick", x: L - 4, y: y(maxV * f) + 3, "text-anchor": "end" }, txt(fmt(maxV * f))));
  }
  if (times.length) {
    svg.appendChild(el("svg:text", { class: "tick", x: L, y: H - 6 }, new Date(t0).toLocaleTimeString()));
    svg.appendChild(el("svg:text", { class: "tick", x: W - R, y: H - 6, "text-anchor": "end" }, new Date(t1).toLocaleTimeString()));
  }
  const legend = el("div", { class: "legend" });
  series.forEach((s, i) => {
    const cls = "series-" + (i % 8);
    let d = "";
    let pen = false;
    s.values.forEach((v, j) => {
      if (v === null || v === undefined) { pen = false; return; }
      d += (pen ? " L" : " M") + x(times[j]).toFixed(1) + " " + y(v).toFixed(1);
      pen = true;
    });
    if (d) svg.appendChild(el("svg:path", { class: "line " + cls, d: d.trim(), "data-series": s.name }));
    // A sample with no known neighbour draws no line: mark it with a dot.
    s.values.forEach((v, j) => {
      const known = (k) => k >= 0 && k < s.values.length && s.values[k] !== null && s.values[k] !== undefined;
      if (known(j) && !known(j - 1) && !known(j + 1)) svg.appendChild(el("svg:circle", { class: "dot " + cls, cx: x(times[j]).toFixed(1), cy: y(v).toFixed(1), r: 2.5 }));
    });
    const last = s.values.length ? s.values[s.values.length - 1] : null;
    let active = null; // time of the latest sample above zero
    s.values.forEach((v, j) => { if (v !== null && v > 0) active = times[j]; });
    const lastText = last === null || last === undefined ? "unknown" : txt(fmt(last));
    legend.appendChild(el("span", { "data-series": s.name, "data-last": last === null || last === undefined ? "unknown" : String(last), "data-last-active": active === null ? "" : String(active) },
      el("span", { class: "swatch " + cls }), s.name + ": " + lastText));
  });
  const box = el("div", { class: "chart", id, "data-samples": String(times.length) });
  box.append(el("h3", {}, title), svg, legend);
  if (!times.length) box.appendChild(el("p", { class: "note" }, "No samples yet."));
  return box;
}

function bytesPerSec(v) { return txt(fmtBytes(v)) + "/s"; }
function records(v) { return Number(Math.round(v)).toLocaleString("en-US"); }

// --- pages ---------------------------------------------------------------------------------

function statusCard(label, value, cls, detail, id) {
  return el("div", { class: "card", id }, el("div", { class: "label" }, label), el("div", { class: "value " + (cls || "") }, value),
    detail ? el("div", { class: "detail" }, detail) : null);
}

async function overviewPage() {
  const [ov, hist] = await Promise.all([api("overview"), api("history")]);
  const etcd = ov.etcd.reachable
    ? statusCard("etcd", "reachable", "ok", ov.etcd.endpoints.join(", "), "etcd-status")
    : statusCard("etcd", "unreachable", "bad", ov.etcd.error, "etcd-status");
  const live = ov.brokers.filter((b) => b.live === true).length;
  const gone = ov.brokers.filter((b) => b.live === false).length;
  const brokersCard = ov.etcd.reachable
    ? statusCard("brokers", live + " live" + (gone ? ", " + gone + " gone" : ""), gone ? "warn" : "ok", null, "brokers-status")
    : statusCard("brokers", "unknown", "unknown", "etcd is unreachable", "brokers-status");
  const s = ov.snapshot;
  let snap;
  if (!s.reachable || s.failing === null) snap = statusCard("etcd snapshots", "unknown", "unknown", s.error, "snapshot-status");
  else {
    const detail = "last success " + (s.lastSuccess ? fmtTime(s.lastSuccess) + " (" + txt(fmtAge(s.ageSeconds)) + " ago)" : "never") + (s.reason ? " · " + s.reason : "");
    snap = statusCard("etcd snapshots", s.failing ? "failing" : "ok", s.failing ? "bad" : "ok", detail, "snapshot-status");
  }
  const cluster = statusCard("cluster", ov.namespace + "/" + ov.cluster, "", ov.clusterId ? "id " + ov.clusterId + " · controller " + ov.controllerId : "no metadata published yet", "cluster-status");

  const rows = ov.brokers.map((b) => {
    let liveness;
    if (b.live === true) liveness = el("span", { class: "ok" }, "live");
    else if (b.live === false) liveness = el("span", { class: "bad" }, "gone" + (b.goneSince ? " since " + new Date(b.goneSince).toLocaleTimeString() : ""));
    else liveness = unknown("etcd is unreachable");
    const health = b.s3Health === null ? unknown(b.metricsError) : el("span", { class: { healthy: "ok", degraded: "warn", unavailable: "bad" }[b.s3Health] }, b.s3Health);
    const drain = b.drainState === null ? unknown(b.metricsError) : el("span", { class: b.drainState === "serving" ? "ok" : "warn" }, b.drainState);
    return el("tr", { "data-node-id": b.nodeId, "data-live": b.live === null ? "unknown" : String(b.live) },
      el("td", { class: "num" }, String(b.nodeId)),
      el("td", { class: "mono" }, b.host + ":" + b.port),
      el("td", { class: "liveness" }, liveness),
      el("td", { class: "drain" }, drain),
      el("td", { class: "s3-health" }, health),
      el("td", {}, b.version === null ? unknown("the broker registers no version") : b.version),
      numCell(b.produceRps, fmtRate),
      numCell(b.fetchRps, fmtRate),
      el("td", { class: "note" }, b.pod || "", b.metricsError ? " " + b.metricsError : ""));
  });
  const table = el("table", { id: "brokers" },
    el("thead", {}, el("tr", {}, ["Node", "Address", "Liveness", "Drain", "S3 health", "Version"].map((h) => el("th", {}, h)),
      el("th", { class: "num" }, "Produce req"), el("th", { class: "num" }, "Fetch req"), el("th", {}, "Pod / notes"))),
    el("tbody", {}, rows));

  const produce = hist.brokers.map((b) => ({ name: "broker " + b.nodeId, values: b.produce }));
  const fetchS = hist.brokers.map((b) => ({ name: "broker " + b.nodeId, values: b.fetch }));
  return el("div", {},
    el("h1", {}, "Overview"),
    el("div", { class: "cards" }, cluster, etcd, brokersCard, snap),
    el("h2", {}, "Brokers"), table,
    el("h2", {}, "Throughput (last hour, sampled every " + hist.intervalSeconds + " s by the server)"),
    el("div", { class: "charts" },
      chart("chart-produce", "Produce bytes/s per broker", hist.times, produce, bytesPerSec),
      chart("chart-fetch", "Fetch bytes/s per broker", hist.times, fetchS, bytesPerSec)),
    el("p", { class: "note" }, "Console " + ov.consoleVersion));
}

async function topicsPage() {
  const ts = await api("topics");
  if (ts.topics === null) return el("div", {}, el("h1", {}, "Topics"), el("p", { class: "error" }, "Topics unknown: " + ts.error));
  const rows = ts.topics.map((t) => el("tr", { "data-topic": t.name },
    el("td", {}, el("a", { href: "#/topic/" + encodeURIComponent(t.name) }, t.name)),
    numCell(t.partitions), numCell(t.records), numCell(t.sizeBytes, fmtBytes), numCell(t.configs)));
  return el("div", {}, el("h1", {}, "Topics"),
    el("table", { id: "topics" }, el("thead", {}, el("tr", {}, el("th", {}, "Topic"), el("th", { class: "num" }, "Partitions"),
      el("th", { class: "num" }, "Records"), el("th", { class: "num" }, "Stored size"), el("th", { class: "num" }, "Configs"))),
    el("tbody", {}, rows)),
    ts.topics.length ? null : el("p", { class: "note" }, "No topics."));
}

async function topicPage(r) {
  const t = await api("topic?name=" + encodeURIComponent(r.arg || "")).catch((e) => {
    if (e instanceof HTTPError && e.status === 404) return null;
    throw e;
  });
  if (t === null) return el("div", {}, el("h1", {}, "Topic ", r.arg || ""), el("p", { class: "error" }, "No such topic."));
  if (t.error) return el("div", {}, el("h1", {}, "Topic ", t.name), el("p", { class: "error" }, "Unknown: " + t.error));
  const parts = t.partitions.map((p) => el("tr", { "data-partition": p.id },
    numCell(p.id), numCell(p.leader), numCell(p.leaderEpoch), numCell(p.logStart), numCell(p.highWatermark), numCell(p.sizeBytes, fmtBytes),
    el("td", {}, el("a", { href: "#/records?topic=" + encodeURIComponent(t.name) + "&partition=" + p.id }, "records"))));
  const configs = Object.keys(t.configs).sort().map((k) => el("tr", {}, el("td", { class: "mono" }, k), el("td", { class: "mono" }, t.configs[k])));
  return el("div", {},
    el("h1", { id: "topic-name" }, t.name),
    el("p", { class: "note" }, "Topic id " + t.id + " · " + t.partitions.length + " partitions"),
    el("h2", {}, "Partitions"),
    el("table", { id: "partitions" }, el("thead", {}, el("tr", {}, ["Partition", "Leader", "Leader epoch", "Log start", "High watermark", "Stored size"].map((h) => el("th", { class: "num" }, h)), el("th", {}, ""))),
      el("tbody", {}, parts)),
    el("h2", {}, "Configs"),
    configs.length ? el("table", { id: "configs" }, el("thead", {}, el("tr", {}, el("th", {}, "Name"), el("th", {}, "Value"))), el("tbody", {}, configs))
      : el("p", { class: "note" }, "No topic-level configs: the broker defaults apply."));
}

function lagText(g) {
  if (g.totalLag === null) return unknown("nothing committed");
  return txt(fmtInt(g.totalLag)) + (g.unknownLag ? " + " + g.unknownLag + " partition(s) unknown" : "");
}

async function groupsPage() {
  const [gs, hist] = await Promise.all([api("groups"), api("history")]);
  if (gs.groups === null) return el("div", {}, el("h1", {}, "Consumer groups"), el("p", { class: "error" }, "Groups unknown: " + gs.error));
  const rows = gs.groups.map((g) => el("tr", { "data-group": g.name },
    el("td", {}, el("a", { href: "#/group/" + encodeURIComponent(g.name) }, g.name)),
    el("td", {}, g.state || unknown()), numCell(g.members), numCell(g.coordinator),
    numCell(g.partitions), el("td", { class: "num", "data-value": g.totalLag === null ? "unknown" : String(g.totalLag) }, lagText(g))));
  const lag = hist.groups.map((g) => ({ name: g.name, values: g.lag }));
  return el("div", {}, el("h1", {}, "Consumer groups"),
    el("table", { id: "groups" }, el("thead", {}, el("tr", {}, el("th", {}, "Group"), el("th", {}, "State"), el("th", { class: "num" }, "Members"),
      el("th", { class: "num" }, "Coordinator"), el("th", { class: "num" }, "Partitions"), el("th", { class: "num" }, "Total lag"))),
    el("tbody", {}, rows)),
    gs.groups.length ? null : el("p", { class: "note" }, "No consumer groups."),
    el("h2", {}, "Lag per group (last hour, sampled every " + hist.intervalSeconds + " s by the server)"),
    el("div", { class: "charts" }, chart("chart-lag", "Total lag (records)", hist.times, lag, records)));
}

async function groupPage(r) {
  const [g, hist] = await Promise.all([
    api("group?name=" + encodeURIComponent(r.arg || "")).catch((e) => {
      if (e instanceof HTTPError && e.status === 404) return null;
      throw e;
    }),
    api("history")]);
  if (g === null) return el("div", {}, el("h1", {}, "Group ", r.arg || ""), el("p", { class: "error" }, "No such group."));
  if (g.error) return el("div", {}, el("h1", {}, "Group ", g.name), el("p", { class: "error" }, "Unknown: " + g.error));
  const members = g.memberList.map((m) => el("tr", {},
    el("td", { class: "mono" }, m.memberId), el("td", {}, m.clientId), el("td", { class: "mono" }, m.clientHost),
    el("td", { class: "mono" }, m.assignment === null ? unknown("not the consumer protocol") : m.assignment.map((a) => a.topic + " [" + a.partitions.join(", ") + "]").join("; "))));
  const offsets = g.offsets.map((o) => el("tr", { "data-topic": o.topic, "data-partition": o.partition },
    el("td", {}, o.topic), numCell(o.partition), numCell(o.committed), numCell(o.highWatermark), numCell(o.lag), el("td", {}, o.member || "")));
  const series = hist.groups.filter((s) => s.name === g.name).map((s) => ({ name: s.name, values: s.lag }));
  return el("div", {},
    el("h1", { id: "group-name" }, g.name),
    el("div", { class: "cards" },
      statusCard("state", g.state || "unknown", g.state === "Stable" ? "ok" : "", "as stored by the coordinator" + (g.updatedAt ? " at " + fmtTime(g.updatedAt) : ""), "group-state"),
      statusCard("members", String(g.members), "", null, "group-members"),
      statusCard("coordinator", g.coordinator === null ? "unknown" : "broker " + g.coordinator, "", null, "group-coordinator"),
      el("div", { class: "card", id: "group-lag", "data-value": g.totalLag === null ? "unknown" : String(g.totalLag) },
        el("div", { class: "label" }, "total lag"), el("div", { class: "value" }, lagText(g)))),
    el("h2", {}, "Members"),
    members.length ? el("table", { id: "members" }, el("thead", {}, el("tr", {}, ["Member id", "Client id", "Host", "Assignment"].map((h) => el("th", {}, h)))), el("tbody", {}, members))
      : el("p", { class: "note" }, "No members."),
    el("h2", {}, "Offsets and lag"),
    el("table", { id: "offsets" }, el("thead", {}, el("tr", {}, el("th", {}, "Topic"), ["Partition", "Committed", "High watermark", "Lag"].map((h) => el("th", { class: "num" }, h)), el("th", {}, "Assigned to"))),
      el("tbody", {}, offsets)),
    el("p", { class: "note" }, "Lag is high watermark − committed offset; unknown where nothing is committed."),
    el("div", { class: "charts" }, chart("chart-group-lag", "Lag of this group (records)", hist.times, series, records)));
}

// The record viewer reads on demand, not on a timer.
async function recordsPage(r) {
  const p = r.params;
  const topics = await api("topics");
  const names = topics.topics ? topics.topics.map((t) => t.name) : [];
  const topicSel = el("select", { id: "rv-topic" }, names.map((n) => el("option", { value: n }, n)));
  if (p.get("topic")) topicSel.value = p.get("topic");
  const partIn = el("input", { id: "rv-partition", type: "number", min: 0, value: p.get("partition") || "0" });
  const modeSel = el("select", { id: "rv-mode" }, el("option", { value: "latest" }, "latest"), el("option", { value: "offset" }, "from offset"), el("option", { value: "timestamp" }, "from time"));
  modeSel.value = p.get("mode") || "latest";
  const fromIn = el("input", { id: "rv-from", value: p.get("from") || "", placeholder: "offset, or time (2026-12-06T10:00:00Z)" });
  const limitIn = el("input", { id: "rv-limit", type: "number", min: 1, value: p.get("limit") || "20" });
  const fmtSel = el("select", { id: "rv-format" }, el("option", { value: "text" }, "text"), el("option", { value: "hex" }, "hex"));
  fmtSel.value = p.get("format") || "text";
  const out = el("div", { id: "rv-result" });
  const go = el("button", { id: "rv-read", type: "submit" }, "Read");
  const form = el("form", { class: "toolbar", id: "rv-form" },
    el("label", {}, "Topic", topicSel), el("label", {}, "Partition", partIn), el("label", {}, "Start", modeSel),
    el("label", {}, "Offset / time", fromIn), el("label", {}, "Records", limitIn), el("label", {}, "Show as", fmtSel), go);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams({ topic: topicSel.value, partition: partIn.value, mode: modeSel.value, from: fromIn.value, limit: limitIn.value, format: fmtSel.value });
    const next = "#/records?" + q.toString();
    if (location.hash === next) render(); else location.hash = next;
  });
  if (p.get("topic")) await readRecords(p, out);
  return el("div", {}, el("h1", {}, "Records"),
    el("p", { class: "note" }, "Read through the Kafka protocol by the console's own read-only client."), form, out);
}
recordsPage.live = false;

function decodeB64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
function showBytes(b64, format) {
  if (b64 === null) return el("span", { class: "unknown" }, "null");
  const bytes = decodeB64(b64);
  if (format === "hex") return Array.from(bytes, (x) => x.toString(16).padStart(2, "0")).join(" ");
  return new TextDecoder("utf-8", { fatal: false }).decode(bytes);
}

async function readRecords(p, out) {
  const q = new URLSearchParams({ topic: p.get("topic"), partition: p.get("partition") || "0", limit: p.get("limit") || "20" });
  const from = (p.get("from") || "").trim();
  if (p.get("mode") === "offset" && from !== "") q.set("offset", from);
  if (p.get("mode") === "timestamp" && from !== "") {
    const t = Date.parse(from);
    if (Number.isNaN(t)) { out.replaceChildren(el("p", { class: "error" }, "Not a time: " + from)); return; }
    q.set("timestamp", String(t));
  }
  let res;
  try {
    res = await api("records?" + q.toString());
  } catch (err) {
    if (err.message === "logged out") throw err;
    out.replaceChildren(el("p", { class: "error" }, "Could not read records: " + err.message));
    return;
  }
  const format = p.get("format") || "text";
  const rows = res.records.map((rec) => el("tr", { "data-offset": rec.offset },
    numCell(rec.offset), el("td", {}, fmtTime(rec.timestamp)),
    el("td", { class: "mono rv-key" }, showBytes(rec.key, format)),
    el("td", { class: "mono rv-headers" }, rec.headers.map((h) => h.key + "=" + (h.value === null ? "null" : (() => { const v = showBytes(h.value, format); return typeof v === "string" ? v : "null"; })())).join("\n")),
    el("td", { class: "mono rv-value" }, showBytes(rec.value, format))));
  out.replaceChildren(
    el("p", { class: "note" }, res.topic + "/" + res.partition + " · log start " + res.logStart + " · high watermark " + res.highWatermark + " · " + res.records.length + " record(s)"),
    el("table", { id: "records" }, el("thead", {}, el("tr", {}, el("th", { class: "num" }, "Offset"), el("th", {}, "Timestamp"), el("th", {}, "Key"), el("th", {}, "Headers"), el("th", {}, "Value"))),
      el("tbody", {}, rows)));
}

// --- boot ----------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", submitLogin);
  $("logout").addEventListener("click", logout);
  window.addEventListener("hashchange", render);
  start();
});
