// The console: hash routes over the keyed read API. No framework and no build step: plain DOM
// (text set with textContent, never parsed as HTML) and small SVG charts.
const API = location.pathname.replace(/\/console\/?$/, ""); // "" locally, "/<stage>" on API Gateway
const KEY = "audience-engine-api-key"; // sessionStorage: this tab only, gone when it closes
const $ = (selector) => document.querySelector(selector);

// ------------------------------------------------------------------ helpers

function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.message || body.detail)) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { "x-api-key": sessionStorage.getItem(KEY) || "" };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = text; }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

async function apiText(path) {
  const response = await fetch(API + path, { headers: { "x-api-key": sessionStorage.getItem(KEY) || "" } });
  if (!response.ok) throw new ApiError(response.status, null);
  return response.text();
}

const enc = encodeURIComponent;
const pct = (v, digits = 1) => (v === null || v === undefined ? "–" : `${(100 * v).toFixed(digits)}%`);
const num = (v, digits = 0) => (v === null || v === undefined ? "–"
  : Number(v).toLocaleString("en", { minimumFractionDigits: digits, maximumFractionDigits: digits }));
const signed = (v, format) => (v >= 0 ? "+" : "−") + format(Math.abs(v));
// an amount always with its currency (the API's base currency)
const money = (v, currency) => (v === null || v === undefined ? "–" : `${num(v, 2)}${currency ? ` ${currency}` : ""}`);
// a value a rule compared: numbers rounded for people (2784.280199999998 -> 2,784.28), text as is
const plain = (v) => (typeof v === "number" ? (Number.isInteger(v) ? num(v) : Number(v).toLocaleString("en", { maximumFractionDigits: Math.abs(v) < 1 ? 3 : 2 }))
  : v === null || v === undefined ? "–" : Array.isArray(v) ? v.map(plain).join(", ") : typeof v === "object" ? Object.entries(v).map(([k, x]) => `${k} ${plain(x)}`).join("; ") : String(v));
const day = (iso) => (iso ? new Date(iso).toLocaleDateString("en-GB", { dateStyle: "medium", timeZone: "UTC" }) : "–");
const when = (iso) => (iso ? new Date(iso).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" }) : "–");

// a table scrolls sideways in its own box, so the page itself stays as wide as the screen
// (``text``: the indices of the columns of prose, aligned left; numbers align right)
function table(header, rows, caption, text = []) {
  const kind = (i) => (text.includes(i) ? "text" : undefined);
  return h("div", { class: "scroll" }, h("table", {},
    caption ? h("caption", { class: "muted" }, caption) : null,
    h("thead", {}, h("tr", {}, header.map((c, i) => h("th", { scope: "col", class: kind(i) }, c)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, row.map((c, i) => h("td", { class: kind(i) }, c)))))));
}

function card(label, value) {
  return h("div", { class: "card" }, h("div", { class: "value" }, value), h("div", { class: "label" }, label));
}

function download(name, text, type) {
  const link = h("a", { href: URL.createObjectURL(new Blob([text], { type })), download: name });
  document.body.append(link);
  link.click();
  link.remove();
}

let notice = ""; // a message for the page being opened
let refusal = ""; // why the sign-in form is shown again (a refused key), shown on it
function say(message) { $("#status").textContent = message; }
function alarm(message) { $("#alert").textContent = message; }

// ------------------------------------------------------------------ charts (SVG)

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children.flat()) if (child !== null) node.append(child instanceof Node ? child : String(child));
  return node;
}

// Horizontal bars: rows of [label, value]; the figure's caption is its accessible name.
function barChart(title, rows, format = (v) => num(v)) {
  const width = 640, left = 230, bar = 22, height = rows.length * (bar + 6) + 10;
  const max = Math.max(...rows.map(([, v]) => v), 1e-9);
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": title },
    rows.map(([label, value], i) => {
      const y = 5 + i * (bar + 6), w = ((width - left - 90) * value) / max;
      return s("g", {},
        s("text", { x: left - 8, y: y + bar * 0.7, "text-anchor": "end" }, label),
        s("rect", { x: left, y, width: Math.max(w, 1), height: bar, fill: "#0b5cad" }),
        s("text", { x: left + w + 6, y: y + bar * 0.7 }, format(value)));
    }));
  return h("figure", {}, svg, h("figcaption", {}, title));
}

// Points with 95% intervals: rows of [label, value, low, high]; a zero line when it is in range.
function intervalChart(title, rows, format) {
  const width = 640, left = 230, right = 20, step = 28, height = rows.length * step + 30;
  const lows = rows.map((r) => r[2]), highs = rows.map((r) => r[3]);
  let min = Math.min(...lows, 0), max = Math.max(...highs, 0);
  if (max - min < 1e-9) max = min + 1;
  const x = (v) => left + ((width - left - right) * (v - min)) / (max - min);
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": title },
    s("line", { x1: x(0), x2: x(0), y1: 0, y2: height - 20, stroke: "#4a5561", "stroke-dasharray": "4 3" }),
    s("text", { x: x(min), y: height - 4 }, format(min)),
    s("text", { x: x(max), y: height - 4, "text-anchor": "end" }, format(max)),
    rows.map(([label, value, low, high], i) => {
      const y = 14 + i * step;
      return s("g", {},
        s("text", { x: left - 8, y: y + 4, "text-anchor": "end" }, label),
        s("line", { x1: x(low), x2: x(high), y1: y, y2: y, stroke: "#0b5cad", "stroke-width": 2 }),
        s("line", { x1: x(low), x2: x(low), y1: y - 6, y2: y + 6, stroke: "#0b5cad" }),
        s("line", { x1: x(high), x2: x(high), y1: y - 6, y2: y + 6, stroke: "#0b5cad" }),
        s("circle", { cx: x(value), cy: y, r: 4.5, fill: "#0b5cad" }),
        s("title", {}, `${label}: ${format(value)} (95% interval ${format(low)} to ${format(high)})`));
    }));
  return h("figure", {}, svg, h("figcaption", {}, title));
}

// ------------------------------------------------------------------ pages

async function segmentsPage() {
  const listed = await api("/v1/segments");
  const version = (listed.segments.find((seg) => seg.modelVersion) || {}).modelVersion; // none before a model
  const model = version ? await api(`/v1/models/segments/${enc(version)}`) : null;
  const learned = new Map((model ? model.segments : []).map((seg) => [seg.id, seg]));
  const drift = model && model.decision ? model.decision.drift : null;
  const change = new Map();
  if (drift && drift.candidateShares) {
    (model.segments || []).forEach((seg, i) => {
      const matched = drift.matching ? drift.matching[String(i)] : undefined;
      if (matched !== undefined && drift.activeShares[matched] !== undefined) {
        change.set(seg.id, drift.candidateShares[i] - drift.activeShares[matched]);
      }
    });
  }
  const view = [h("h2", {}, "Segments")];
  if (model) {
    const report = h("button", { type: "button", class: "secondary", onclick: () => openReport(model.version) },
      "Open the model's report");
    view.push(h("div", { class: "cards" },
      card("model in force", model.version), card("segments (k)", model.k),
      card("silhouette", num(model.silhouette, 3)),
      card("stability (mean / worst refit)", `${num(model.stability.mean, 3)} / ${num(model.stability.worst, 3)}`),
      card("customers trained on", num(model.rows))),
    h("p", { class: "muted" }, model.choice || ""), h("div", { class: "actions" }, report));
  } else {
    view.push(h("p", { class: "muted" }, "No segmentation model yet: the retrain function trains one."));
  }
  const kinds = { learned: "Learned segments", rfm: "RFM cells", tier: "Tiers (trigger rules)" };
  for (const [kind, title] of Object.entries(kinds)) {
    const rows = listed.segments.filter((seg) => seg.kind === kind);
    if (!rows.length) continue;
    // shares from the measure job's KPIs (every member now) of every customer it counted: tiers
    // overlap nobody and cover few, so their own total would make the biggest tier 100%; a
    // partition's total is the population anyway. Else the model's training figures.
    const revenueOf = (seg) => (seg && seg.kpis ? seg.kpis.customers * (seg.kpis.revenuePerCustomer || 0) : 0);
    const everyone = listed.population;
    const customers = everyone ? everyone.customers : kind === "tier" ? 0 : rows.reduce((sum, seg) => sum + (seg.kpis ? seg.kpis.customers : 0), 0);
    const revenue = everyone ? revenueOf({ kpis: everyone }) : kind === "tier" ? 0 : rows.reduce((sum, seg) => sum + revenueOf(seg), 0);
    view.push(h("h3", {}, title), table(
      ["segment", "members", "customers", "share of customers", "share of revenue", "change since previous model", "definition"],
      rows.map((seg) => {
        const m = learned.get(seg.segmentId);
        const delta = change.get(seg.segmentId);
        const customerShare = seg.kpis && customers ? pct(seg.kpis.customers / customers) : m ? pct(m.share) : "–";
        const revenueShare = seg.kpis && revenue ? pct(revenueOf(seg) / revenue) : m && m.revenueShare !== null ? pct(m.revenueShare) : "–";
        return [h("a", { href: `#/segment/${enc(seg.segmentId)}` }, seg.name), num(seg.size), seg.kpis ? num(seg.kpis.customers) : "–",
          customerShare, revenueShare,
          delta === undefined ? "–" : signed(delta * 100, (v) => `${v.toFixed(1)} pts`), m ? m.description : seg.definition];
      }), `Members: customers who allow personalization (the API's member list). Customers and shares: every member, as the daily measure job last counted them${listed.sizesAsOf ? ` (${when(listed.sizesAsOf)})` : ""}, of all ${everyone ? num(everyone.customers) : "the"} customers (net revenue, lifetime${listed.currency ? `, ${listed.currency}` : ""}).`, [6]));
    if (kind === "learned" && model) {
      view.push(barChart("Customers per learned segment (training population)",
        model.segments.map((seg) => [seg.name, seg.size])));
    } else if (rows.some((seg) => seg.size > 0)) {
      view.push(barChart(`Members per ${kind === "tier" ? "tier" : "RFM cell"} (who allow personalization)`,
        rows.filter((seg) => seg.size > 0).map((seg) => [seg.name, seg.size])));
    }
  }
  if (drift && drift.moves && Object.keys(drift.moves).length) {
    const moves = Object.entries(drift.moves).sort((a, b) => b[1] - a[1]).slice(0, 12);
    view.push(h("h3", {}, "Moves between the previous model and this one"),
      barChart("Customers who moved, by from → to (the twelve largest)", moves));
  }
  return view;
}

async function openReport(version) {
  const page = await apiText(`/v1/models/segments/${enc(version)}/report`);
  window.open(URL.createObjectURL(new Blob([page], { type: "text/html" })), "_blank", "noopener");
}

// A daily series: the size as a line, the customers entering (above the axis) and leaving
// (below) as bars; points are {day, customers, entered, left}.
function trendChart(title, points) {
  const width = 640, height = 220, left = 48, right = 12, top = 10, mid = 150, flow = 50;
  const n = Math.max(points.length, 1), step = (width - left - right) / n;
  const sizes = points.map((p) => p.customers || 0);
  const max = Math.max(...sizes, 1), maxFlow = Math.max(...points.map((p) => Math.max(p.entered, p.left)), 1);
  const y = (v) => top + (mid - top - 10) * (1 - v / max);
  const path = points.map((p, i) => `${i ? "L" : "M"}${(left + step * (i + 0.5)).toFixed(1)},${y(p.customers || 0).toFixed(1)}`).join(" ");
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": title },
    s("text", { x: left - 6, y: y(max) + 4, "text-anchor": "end" }, num(max)),
    s("text", { x: left - 6, y: y(0) + 4, "text-anchor": "end" }, "0"),
    s("line", { x1: left, x2: width - right, y1: y(0), y2: y(0), stroke: "#c9d1d9" }),
    s("path", { d: path, fill: "none", stroke: "#0b5cad", "stroke-width": 2 }),
    s("line", { x1: left, x2: width - right, y1: mid + flow / 2 + 10, y2: mid + flow / 2 + 10, stroke: "#c9d1d9" }),
    points.map((p, i) => {
      const x = left + step * i + step * 0.15, w = Math.max(step * 0.7, 1), base = mid + flow / 2 + 10;
      const up = (flow / 2) * (p.entered / maxFlow), down = (flow / 2) * (p.left / maxFlow);
      return s("g", {},
        s("rect", { x, y: base - up, width: w, height: Math.max(up, 0), fill: "#1f6f3a" }),
        s("rect", { x, y: base, width: w, height: Math.max(down, 0), fill: "#a4161a" }),
        s("title", {}, `${day(p.day)}: ${num(p.customers)} customers (${pct(p.share)}), ${num(p.entered)} entered, ${num(p.left)} left`));
    }),
    points.length ? s("text", { x: left, y: height - 4 }, day(points[0].day)) : null,
    points.length ? s("text", { x: width - right, y: height - 4, "text-anchor": "end" }, day(points[points.length - 1].day)) : null);
  return h("figure", {}, svg, h("figcaption", {}, title));
}

async function segmentPage(id) {
  const [segment, trend] = await Promise.all([api(`/v1/segments/${enc(id)}`), api(`/v1/segments/${enc(id)}/trend`)]);
  const k = segment.kpis, currency = segment.currency;
  const view = [
    h("h2", {}, segment.name, " ", h("span", { class: "muted" }, `(${segment.kind})`)),
    h("p", {}, segment.description || segment.definition),
    h("dl", {}, h("dt", {}, "id"), h("dd", {}, segment.segmentId), h("dt", {}, "definition"), h("dd", {}, segment.definition),
      h("dt", {}, "model"), h("dd", {}, segment.modelVersion || "none (trigger rules)")),
    h("h3", {}, "Key figures"),
    k ? h("div", { class: "cards" }, card("customers", num(k.customers)), card("ordered in the last 30 days", pct(k.conversion30d)),
      card("revenue per customer (net, lifetime)", money(k.revenuePerCustomer, currency)), card("average order value", money(k.averageOrderValue, currency)),
      card(`retention, 90 days (of ${num(k.retentionBase)})`, pct(k.retention90d)))
      : h("p", { class: "muted" }, "No figures yet: the daily measure job computes them."),
    k ? h("p", { class: "muted" }, `As of ${when(k.asOf)}.`) : null,
    h("h3", {}, "Trend"),
    trendSection(trend),
    h("h3", {}, `Members (${num(segment.size)} who allow personalization)`),
  ];
  view.push(await memberSection(id, currency));
  return view;
}

function trendSection(trend) {
  const points = trend.points;
  if (!points.length) return h("p", { class: "muted" }, "No trend yet: the daily measure job counts the segments.");
  const options = points.map((p) => h("option", { value: p.day }, `${day(p.day)}${p.measured ? "" : " (from the moves)"}`));
  const from = h("select", { id: "compare-from" }, options.map((o) => o.cloneNode(true)));
  const to = h("select", { id: "compare-to" }, options);
  from.value = points[Math.max(points.length - 8, 0)].day;
  to.value = points[points.length - 1].day;
  const said = h("p", { id: "comparison", role: "status" });
  const compare = () => {
    const a = points.find((p) => p.day === from.value), b = points.find((p) => p.day === to.value);
    const between = points.filter((p) => p.day > a.day && p.day <= b.day);
    const entered = between.reduce((t, p) => t + p.entered, 0), left = between.reduce((t, p) => t + p.left, 0);
    said.textContent = `${day(a.day)}: ${num(a.customers)} customers (${pct(a.share)}). ${day(b.day)}: ${num(b.customers)} (${pct(b.share)}). `
      + `Change ${signed((b.customers || 0) - (a.customers || 0), num)} customers, ${signed(((b.share || 0) - (a.share || 0)) * 100, (v) => `${v.toFixed(1)} pts`)}; `
      + `${num(entered)} entered and ${num(left)} left in between.`;
  };
  from.addEventListener("change", compare);
  to.addEventListener("change", compare);
  compare();
  const recent = points.slice(-7).reverse();
  return h("div", {},
    trendChart(`Customers in ${trend.name} per day (line) and the customers entering (green) and leaving (red)`, points),
    h("div", { class: "actions" }, h("label", { for: "compare-from" }, "Compare"), from, h("label", { for: "compare-to" }, "with"), to),
    said,
    table(["day", "customers", "share of customers", "entered", "left"], recent.map((p) =>
      [day(p.day), num(p.customers), pct(p.share), num(p.entered), num(p.left)]),
      "The last seven days (sizes are the measure job's counts on the days it ran, else worked back from the day's moves)"));
}

// The member table: what a marketer filters on, sortable and filterable in the page; the CSV
// holds the same columns for every member (read through the paged API in the browser).
const MEMBER_COLUMNS = [
  ["customerId", "customer", (r) => r.customerId],
  ["lastOrderAt", "last order", (r) => r.lastOrderAt || ""],
  ["orders", "orders", (r) => r.orders],
  ["netRevenue", "net revenue", (r) => r.netRevenue],
  ["clv12m", "12-month value (CLV)", (r) => (r.clv12m === null ? -1 : r.clv12m)],
  ["churnRisk", "churn risk", (r) => (r.churnRisk === null ? -1 : r.churnRisk)],
  ["consent", "consent (analytics, personalization, marketing)", (r) => consentText(r.consent)],
];
const consentText = (c) => ["analytics", "personalization", "marketing"].map((p) => (c[p] ? "yes" : "no")).join(" / ");

async function memberSection(id, currency) {
  const first = await api(`/v1/segments/${enc(id)}/members?limit=100`);
  let rows = first.members, cursor = first.nextCursor, sortKey = "customerId", ascending = true;
  const body = h("tbody", {});
  const headRow = h("tr", {});
  const filter = h("input", { id: "member-filter", type: "search", placeholder: "customer id contains…" });
  const minRisk = h("input", { id: "member-risk", type: "number", min: "0", max: "100", step: "5", value: "0" });
  const marketing = h("input", { id: "member-marketing", type: "checkbox" });
  const count = h("p", { class: "muted", role: "status" });
  const more = h("button", { type: "button", class: "secondary", hidden: !cursor }, "Load more members");
  const shown = () => {
    const text = filter.value.trim().toLowerCase(), risk = Number(minRisk.value || 0) / 100;
    const [, , key] = MEMBER_COLUMNS.find(([k]) => k === sortKey);
    const kept = rows.filter((r) => r.customerId.toLowerCase().includes(text) && (risk <= 0 || (r.churnRisk !== null && r.churnRisk >= risk))
      && (!marketing.checked || r.consent.marketing));
    kept.sort((a, b) => { const x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1); });
    body.replaceChildren(...kept.map((r) => h("tr", {},
      h("td", {}, h("a", { href: `#/customer/${enc(r.customerId)}` }, r.customerId)), h("td", {}, day(r.lastOrderAt)), h("td", {}, num(r.orders)),
      h("td", {}, money(r.netRevenue, currency)), h("td", {}, money(r.clv12m, currency)), h("td", {}, pct(r.churnRisk)),
      h("td", {}, consentText(r.consent)))));
    count.textContent = `${kept.length} of the ${rows.length} members loaded${cursor ? " (more to load)" : ""}.`;
    headRow.querySelectorAll("th").forEach((th) => th.setAttribute("aria-sort", th.dataset.key === sortKey ? (ascending ? "ascending" : "descending") : "none"));
  };
  headRow.append(...MEMBER_COLUMNS.map(([k, label]) => h("th", { scope: "col", "data-key": k },
    h("button", { type: "button", class: "sort", onclick: () => { ascending = sortKey === k ? !ascending : true; sortKey = k; shown(); } }, label))));
  more.addEventListener("click", async () => {
    const page = await api(`/v1/segments/${enc(id)}/members?limit=100&cursor=${enc(cursor)}`);
    rows = rows.concat(page.members);
    cursor = page.nextCursor;
    more.hidden = !cursor;
    shown();
  });
  for (const control of [filter, minRisk, marketing]) control.addEventListener("input", shown);
  shown();
  return h("div", {},
    h("div", { class: "actions" },
      h("label", { for: "member-filter" }, "Filter"), filter,
      h("label", { for: "member-risk" }, "churn risk at least (%)"), minRisk,
      marketing, h("label", { for: "member-marketing" }, "allow marketing")),
    count,
    h("div", { class: "scroll" }, h("table", { id: "members" }, h("caption", { class: "muted" }, `Amounts in ${currency}; click a column to sort.`),
      h("thead", {}, headRow), body)),
    h("div", { class: "actions" }, more,
      h("button", { type: "button", onclick: () => downloadMembers(id, currency) }, "Download members (CSV)")));
}

const csvCell = (v) => {
  const text = v === null || v === undefined ? "" : String(v);
  const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text; // no formula injection in a spreadsheet
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
};

async function downloadMembers(id, currency) {
  const rows = [];
  let cursor = null;
  do {
    const page = await api(`/v1/segments/${enc(id)}/members?limit=100${cursor ? `&cursor=${enc(cursor)}` : ""}`);
    rows.push(...page.members);
    cursor = page.nextCursor;
    say(`${rows.length} members read…`);
  } while (cursor);
  const header = ["customerId", "lastOrderAt", "orders", `netRevenue (${currency})`, `clv12m (${currency})`, "churnRisk",
    "consentAnalytics", "consentPersonalization", "consentMarketing"];
  const lines = rows.map((r) => [r.customerId, r.lastOrderAt, r.orders, r.netRevenue.toFixed(2), r.clv12m === null ? "" : r.clv12m.toFixed(2),
    r.churnRisk === null ? "" : r.churnRisk.toFixed(4), r.consent.analytics, r.consent.personalization, r.consent.marketing].map(csvCell).join(","));
  download(`${id.replace(/[^a-z0-9-]+/gi, "-")}-members.csv`, [header.join(","), ...lines].join("\n") + "\n", "text/csv");
  say(`Downloaded ${rows.length} members.`);
}

// Ids are matched as typed, then lower-cased (ids are usually lower-case; people type "SHOP-0001").
// Not an id: an email (has "@") or a phone (digits, spaces, + - ( )) is looked up through its keyed
// hash (GET /v1/customers?email=|phone=): the server hashes it as identify stores it, never keeps it.
const PHONE = /^\+?[\d\s().-]{6,}$/;
async function findCustomer(id) {
  try {
    return await api(`/v1/customers/${enc(id)}`);
  } catch (error) {
    if (error.status !== 404) throw error;
  }
  if (id.toLowerCase() !== id) {
    try {
      return await api(`/v1/customers/${enc(id.toLowerCase())}`);
    } catch (error) {
      if (error.status !== 404) throw error;
    }
  }
  const trait = id.includes("@") ? "email" : PHONE.test(id) ? "phone" : null;
  if (!trait) throw new ApiError(404, { message: `no customer has the id '${id}'` });
  const { customers } = await api(`/v1/customers?${new URLSearchParams({ [trait]: id })}`);
  if (customers.length === 0) throw new ApiError(404, { message: `no customer has the id or ${trait} '${id}'` });
  if (customers.length > 1) {
    throw new ApiError(409, { message: `${customers.length} customers have the ${trait} '${id}': ${customers.join(", ")} (search by one of these ids)` });
  }
  return api(`/v1/customers/${enc(customers[0])}`);
}

const consentNote = (state) => (state.at ? `${state.granted ? "granted" : "refused"} (${state.source}, ${when(state.at)})` : "never asked: allowed");

async function customerPage(asked) {
  const customer = await findCustomer(asked);
  const id = customer.customerId;
  const [told, recommended, timeline] = await Promise.all([
    api(`/v1/customers/${enc(id)}/explain`),
    api(`/v1/customers/${enc(id)}/recommendations?n=5`),
    api(`/v1/customers/${enc(id)}/timeline`),
  ]);
  const p = customer.predictions, r = customer.rfm, currency = customer.currency;
  const consent = h("fieldset", {}, h("legend", {}, "Consent"),
    ["analytics", "personalization", "marketing"].map((purpose) => {
      const state = customer.consent[purpose] || { granted: true };
      const note = h("span", { class: "muted", id: `consent-${purpose}-note` }, ` ${consentNote(state)}`);
      const said = h("span", { class: "said", id: `consent-${purpose}-said`, role: "status" });
      const box = h("input", { type: "checkbox", id: `consent-${purpose}`, checked: state.granted, "aria-describedby": `consent-${purpose}-note`,
        onchange: (e) => changeConsent(id, purpose, e.target, note, said) });
      return h("div", { class: "consent" }, box, " ", h("label", { for: `consent-${purpose}` }, purpose), note, said);
    }));
  const tier = customer.tier;
  return [
    h("h2", {}, `Customer ${customer.customerId}`),
    h("p", { class: "muted" }, `Ids: ${customer.identities.join(", ") || customer.customerId}. First seen ${when(customer.firstSeen)}, last seen ${when(customer.lastSeen)}.`),
    h("div", { class: "cards" },
      card("learned segment", customer.segments ? customer.segments.name : "–"),
      card("RFM cell", customer.segments ? customer.segments.rfm : "–"),
      card("tier", tier ? tier.name : "none"),
      card("orders / net revenue", `${num(r.orders)} / ${money(r.netRevenue, currency)}`),
      card("12-month value (CLV)", p ? money(p.clv12m, currency) : "–"),
      card("churn risk", p && p.churnRisk !== null && p.churnRisk !== undefined ? pct(p.churnRisk) : "–"),
      card("probability alive", p ? pct(p.pAlive) : "–")),
    h("h3", {}, "Why this segment"),
    h("p", {}, told.segment ? `The model ${told.modelVersion} puts ${customer.customerId} in ${told.segment}`
      + (told.rfm ? ` (RFM ${told.rfm.r}-${told.rfm.f}-${told.rfm.m}: ${told.rfm.cell}).` : ".") : "No model places this customer yet."),
    told.overridden ? h("p", { class: "note" }, told.overridden) : null,
    tier ? h("p", {}, `Tier ${tier.name} since ${when(tier.since)}, by the rule ${tier.rule}.`) : null,
    h("div", { class: "columns" },
      h("div", {}, table(["feature", "value", "percentile", "as the model sees it"],
        told.features.map((f) => [f.name, f.value === null ? "–" : num(f.value, 2), f.percentile === null ? "–" : `${f.percentile}`,
          f.modelValue === null ? "–" : num(f.modelValue, 3)]), "The customer's features")),
      h("div", {}, told.scores.length ? barChart("Distance to each segment's centre (nearest wins)",
        told.scores.map((sc) => [sc.name, sc.distance]), (v) => num(v, 3)) : h("p", { class: "muted" }, "Not clustered (no order yet)."))),
    table(["trigger rule", "tier", "holds", "values compared"],
      told.rules.map((rule) => [rule.id, rule.tier, rule.holds ? "yes" : "no", plain(rule.compared)]), `Every trigger rule (amounts in ${currency})`, [1, 3]),
    p && p.churnDrivers && p.churnDrivers.length ? table(["churn driver", "customer's value", "typical", "risk it adds"],
      p.churnDrivers.map((d) => [d.feature, num(d.value, 1), num(d.typical, 1), signed(d.effect * 100, (v) => `${v.toFixed(1)} pts`)]),
      "What drives the churn risk (occlusion: the risk were the customer typical in that feature)") : null,
    h("h3", {}, "Recommended products"),
    h("p", { class: "muted" }, recommended.personalized ? "Personalized." : "Not personalized: the popular list."),
    recommended.items.length ? h("ol", {}, recommended.items.map((item) =>
      h("li", {}, `${item.name || item.productId} `, h("span", { class: "muted" }, `(${item.reason})`)))) : h("p", {}, "None."),
    h("h3", {}, "Timeline"),
    timeline.entries.length ? table(["when", "what", ""], timeline.entries.slice(0, 60).map((e) =>
      [["orders", "browsing"].includes(e.kind) ? day(e.at) : when(e.at), e.kind, e.summary]),
      `Orders, browsing, moves, experiment exposures and consent, newest first${timeline.entries.length > 60 ? " (the latest 60)" : ""}`, [1, 2])
      : h("p", { class: "muted" }, "Nothing recorded yet."),
    h("h3", {}, "Recent moves"),
    told.moves.length ? table(["when", "from", "to", "tier", "reason"], told.moves.slice().reverse().map((m) =>
      [when(m.at), m.previous || "–", m.segment || "–", m.tier || "–", m.reason]), undefined, [1, 2, 3, 4]) : h("p", { class: "muted" }, "None."),
    h("h3", {}, "Privacy"),
    consent,
    h("div", { class: "actions" },
      h("button", { type: "button", class: "secondary", onclick: () => exportCustomer(customer.customerId) }, "Export everything held (JSON)"),
      h("button", { type: "button", class: "danger", onclick: () => eraseCustomer(customer.customerId) }, "Erase this customer…")),
  ];
}

// The confirmation sits beside the box it is about; the note shows what the server now holds;
// a refused save puts the box back as the server still has it.
async function changeConsent(id, purpose, box, note, said) {
  const granted = box.checked;
  box.disabled = true;
  said.className = "said";
  said.textContent = " saving…";
  try {
    const saved = await api(`/v1/customers/${enc(id)}/consent`, { method: "PUT", body: { [purpose]: granted, source: "console" } });
    const state = saved.consent[purpose];
    box.checked = state.granted;
    note.textContent = ` ${consentNote(state)}`;
    said.textContent = ` Saved: consent to ${purpose} ${state.granted ? "granted" : "refused"}.`;
  } catch (error) {
    box.checked = !granted; // what the server still holds
    said.className = "said bad";
    said.textContent = ` Not saved (${error.status || "no answer"}: ${error.message}); still ${granted ? "refused" : "granted"}.`;
  } finally {
    box.disabled = false;
  }
}

async function exportCustomer(id) {
  const found = await api(`/v1/customers/${enc(id)}/export`);
  download(`${id}-export.json`, JSON.stringify(found, null, 2), "application/json");
  say(`Exported ${id}.`);
}

async function eraseCustomer(id) {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = `Erase ${id} and every id merged into it? The profile, its history and consent are deleted and the ids are suppressed. This cannot be undone.`;
  dialog.returnValue = "";
  dialog.showModal();
  await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
  if (dialog.returnValue !== "ok") {
    say("Erasure cancelled.");
    return;
  }
  const receipt = await api(`/v1/customers/${enc(id)}`, { method: "DELETE" });
  notice = `Erased ${id}: receipt ${receipt.receiptId}.`; // shown once the segments page has loaded
  location.hash = "#/segments";
}

// ------------------------------------------------------------------ the rule builder

// Each kind of trigger rule the builder offers, with its parameters: [field, label, default, step].
const RULE_KINDS = {
  "order-at-least": ["a single order of at least", [["amount", "amount (base currency)", 500, 1], ["within_days", "within days", 30, 1]]],
  "revenue-in-window-at-least": ["revenue in a window of at least", [["amount", "amount (base currency)", 1000, 1], ["days", "days (30 or 90)", 90, 1]]],
  "top-monetary-percent": ["among the top spenders", [["percent", "top percent", 1, 1]]],
  "clv-top-percent": ["among the top by 12-month value", [["percent", "top percent", 10, 1]]],
  "churn-risk-at-least": ["churn risk at least", [["risk", "risk (0-1)", 0.6, 0.05]]],
  "p-alive-below": ["probability alive below", [["probability", "probability (0-1)", 0.3, 0.05]]],
  "engagement-drop": ["active, then silent", [["inactive_days", "silent days", 60, 1], ["min_events", "at least events", 10, 1]]],
  "engaged-visitor": ["an engaged visitor", [["days", "days (30 or 90)", 30, 1], ["min_page_views", "at least page views", 10, 1]]],
};
const ruleText = (rule) => (rule.kind in RULE_KINDS
  ? `${RULE_KINDS[rule.kind][0]}: ${RULE_KINDS[rule.kind][1].filter(([f]) => rule[f] !== undefined).map(([f, label]) => `${label} ${plain(Number(rule[f]))}`).join(", ")}`
  : `${rule.kind}${rule.kind === "all" ? ` of ${rule.conditions ? rule.conditions.length : 0} conditions` : ""}`);

async function rulesPage() {
  const inForce = await api("/v1/rules");
  const draft = inForce.rules.map((rule) => ({ ...rule }));
  let timer = null, asked = 0, dryRun = null; // dryRun: the document the last dry run passed
  const list = h("ol", { class: "rules" });
  const sizes = h("div", { id: "rule-preview", "aria-live": "polite" });
  const problems = h("div", { id: "rule-errors", role: "alert" });
  const said = h("p", { id: "rule-said", role: "status" });
  const documentText = h("pre", { class: "document" });
  const save = h("button", { type: "button", id: "rule-save", disabled: true }, "Save the rules");
  const document_ = () => ({ rules: draft });
  const changed = () => {
    dryRun = null;
    save.disabled = true;
    drawList();
    documentText.textContent = JSON.stringify(document_(), null, 2);
    clearTimeout(timer);
    timer = setTimeout(() => tryRules(false), 350); // the live preview, once typing pauses
  };
  const tryRules = async (isDryRun) => {
    const mine = ++asked, sent = JSON.stringify(document_());
    try {
      const found = await api("/v1/rules/preview", { method: "POST", body: document_() });
      if (mine !== asked) return;
      problems.replaceChildren();
      sizes.replaceChildren(
        table(["tier", "now", "with these rules", "entering", "leaving", "estimated, every customer"], found.tiers.map((t) =>
          [t.tier, num(t.now), num(t.after), num(t.entering), num(t.leaving), num(t.estimated)]),
          found.exact ? `Every current customer (${num(found.read)} profiles read).`
            : `A sample of ${num(found.read)} current profiles, scaled to ${num(found.population)} customers.`),
        table(["rule", "tier", "holds for", "gives the tier to"], found.rules.map((r) => [r.id, r.tier, num(r.holds), num(r.decides)]),
          "Rules in priority order: the first that holds gives the tier.", [1]));
      if (isDryRun) {
        dryRun = sent;
        save.disabled = false;
        said.textContent = "Dry run passed: the rules pass the upload's checks. Save them to put them in force.";
      }
    } catch (error) {
      if (mine !== asked) return;
      const errors = (error.body && error.body.errors) || [];
      problems.replaceChildren(h("p", { class: "bad" }, `The rules would be refused (${error.status || "no answer"}): ${error.message}`),
        errors.length ? h("ul", {}, errors.map((e) => h("li", {}, `${e.field}: ${e.reason}`))) : null);
      if (isDryRun) said.textContent = "Dry run failed: nothing can be saved until it passes.";
    }
  };
  const move = (i, by) => { const [rule] = draft.splice(i, 1); draft.splice(i + by, 0, rule); changed(); };
  const drawList = () => list.replaceChildren(...draft.map((rule, i) => h("li", {},
    h("strong", {}, rule.tier), ` ← ${rule.id}: ${ruleText(rule)}`, rule.description ? h("span", { class: "muted" }, ` (${rule.description})`) : null, " ",
    h("button", { type: "button", class: "secondary", "aria-label": `Move ${rule.id} up`, disabled: i === 0, onclick: () => move(i, -1) }, "↑"), " ",
    h("button", { type: "button", class: "secondary", "aria-label": `Move ${rule.id} down`, disabled: i === draft.length - 1, onclick: () => move(i, 1) }, "↓"), " ",
    h("button", { type: "button", class: "secondary", "aria-label": `Remove ${rule.id}`, onclick: () => { draft.splice(i, 1); changed(); } }, "Remove"))));

  // the new rule's form: its parameters follow the kind chosen
  const kind = h("select", { id: "rule-kind" }, Object.entries(RULE_KINDS).map(([k, [text]]) => h("option", { value: k }, `${k}: ${text}`)));
  const ruleId = h("input", { id: "rule-id", placeholder: "e.g. big-order", pattern: "[a-z0-9][a-z0-9-]{0,62}" });
  const tier = h("input", { id: "rule-tier", placeholder: "e.g. Big Orders" });
  const description = h("input", { id: "rule-description" });
  const parameters = h("div", { class: "actions" });
  const drawParameters = () => parameters.replaceChildren(...RULE_KINDS[kind.value][1].flatMap(([field, label, value, step]) => [
    h("label", { for: `rule-${field}` }, label), h("input", { id: `rule-${field}`, type: "number", value, step, "data-field": field })]));
  kind.addEventListener("change", drawParameters);
  drawParameters();
  const add = h("button", { type: "button", id: "rule-add", onclick: () => {
    const rule = { id: ruleId.value.trim(), kind: kind.value, tier: tier.value.trim() };
    if (description.value.trim()) rule.description = description.value.trim();
    parameters.querySelectorAll("input").forEach((input) => { if (input.value !== "") rule[input.dataset.field] = Number(input.value); });
    draft.push(rule);
    changed();
  } }, "Add the rule");
  save.addEventListener("click", async () => {
    if (dryRun !== JSON.stringify(document_())) return;
    try {
      const saved = await api("/v1/rules", { method: "PUT", body: document_() });
      said.textContent = saved.accepted ? `Saved and in force (${saved.inForce.rules.length} rules; report ${saved.report}).` : "Refused by the checks: the rules in force stay.";
      save.disabled = true;
      dryRun = null;
    } catch (error) {
      const errors = (error.body && error.body.errors) || [];
      said.textContent = `Not saved (${error.status || "no answer"}: ${error.message})${errors.length ? `: ${errors.map((e) => `${e.field}: ${e.reason}`).join("; ")}` : ""}.`;
    }
  });
  drawList();
  documentText.textContent = JSON.stringify(document_(), null, 2);
  tryRules(false);
  return [
    h("h2", {}, "Trigger rules"),
    h("p", { class: "muted" }, "The rules that put customers in tiers at once, highest priority first: a customer's tier is the tier of the first rule that holds. Every change previews the tiers' sizes over the current customers; a dry run checks the rules as an upload of config/triggers.json is checked, and only then can they be saved."),
    h("h3", {}, "Rules"), list,
    h("h3", {}, "Add a rule"),
    h("div", { class: "actions" }, h("label", { for: "rule-kind" }, "kind"), kind, h("label", { for: "rule-id" }, "id"), ruleId,
      h("label", { for: "rule-tier" }, "tier"), tier, h("label", { for: "rule-description" }, "description"), description),
    parameters, h("div", { class: "actions" }, add),
    h("h3", {}, "Preview"), problems, sizes,
    h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", id: "rule-dry-run", onclick: () => tryRules(true) }, "Dry run"), save),
    said,
    h("details", {}, h("summary", {}, "The document (config/triggers.json)"), documentText),
  ];
}

async function experimentsPage() {
  const listed = await api("/v1/experiments");
  return [
    h("h2", {}, "Experiments"),
    h("p", { class: "muted" }, `Global holdout: ${pct(listed.holdout)} of customers never get personalized content.`),
    listed.experiments.length ? table(["experiment", "status", "segments", "variants (weight)", "window", "runs"],
      listed.experiments.map((e) => [h("a", { href: `#/experiment/${enc(e.id)}` }, e.id), e.status,
        e.segments.length ? e.segments.join(", ") : "everyone", e.variants.map((v) => `${v.id} (${v.weight})`).join(", "),
        `${e.windowDays} days`, `${when(e.start)} – ${when(e.end)}`]))
      : h("p", {}, "No experiments configured (config/experiments.json)."),
  ];
}

async function experimentPage(id) {
  let found;
  try {
    found = await api(`/v1/experiments/${enc(id)}/results`);
  } catch (error) {
    if (error.status === 404) return [h("h2", {}, `Experiment ${id}`), h("p", {}, "No results yet: the daily measure job computes them.")];
    throw error;
  }
  const ratio = found.sampleRatio;
  const variants = Object.entries(found.variants);
  // a lift as "+x [low, high], p = …" (scale 100 and "pts" for a difference of proportions)
  const liftText = (l, scale = 1, unit = "", digits = 2) => (l
    ? `${signed(l.absolute * scale, (x) => x.toFixed(digits))}${unit} [${(l.low * scale).toFixed(digits)}, ${(l.high * scale).toFixed(digits)}], p = ${l.pValue.toPrecision(2)}`
    : "control");
  // the always-valid sequence, and the one corrected for many comparisons (Holm per variant, BH per segment)
  const validText = (l, scale = 1, unit = "", digits = 2) => {
    if (!l) return "control";
    if (l.sequentialLow === undefined || l.sequentialLow === null) return "–";
    const f = (x) => (x * scale).toFixed(digits);
    const a = l.adjusted;
    return `${signed(l.absolute * scale, (x) => x.toFixed(digits))}${unit} [${f(l.sequentialLow)}, ${f(l.sequentialHigh)}], p = ${l.sequentialPValue.toPrecision(2)}`
      + (a ? `; ${a.method === "holm" ? "Holm" : "BH"} [${f(a.sequentialLow)}, ${f(a.sequentialHigh)}], p = ${a.sequentialPValue.toPrecision(2)}` : "");
  };
  const rows = (table_) => Object.entries(table_).map(([name, v]) => {
    const cuped = v.revenueLiftCuped, cupac = v.revenueLiftCupac, guard = v.refundsGuardrail;
    return [name, num(v.exposed), num(v.converted), pct(v.conversion), num(v.revenuePerCustomer, 2),
      validText(v.conversionLift, 100, " pts", 1), validText(cupac),
      cupac ? `CUPED −${pct(cuped.varianceReduction, 0)}, CUPAC −${pct(cupac.varianceReduction, 0)}` : "control",
      guard ? `${guard.harmed ? "HARMED " : "ok "}${validText(guard)}` : "control",
      liftText(v.conversionLift, 100, " pts", 1), liftText(v.revenueLift)];
  });
  const header = ["variant", "exposed", "converted", "conversion", "revenue / customer",
    "conversion lift, always valid [95%]", "revenue / customer lift, CUPAC, always valid [95%]", "variance reduction",
    "refunds / customer (guardrail)", "conversion lift, fixed horizon [95% CI]", "revenue lift, fixed horizon [95% CI]"];
  const lifts = [];
  for (const [segment, tableBySegment] of Object.entries(found.segments)) {
    for (const [variant, v] of Object.entries(tableBySegment)) {
      const a = v.conversionLift && v.conversionLift.adjusted;
      if (a) lifts.push([`${segment} · ${variant}`, v.conversionLift.absolute, a.sequentialLow, a.sequentialHigh]);
    }
  }
  const decision = found.decision, reading = found.reading, plan = found.planning;
  const actions = { keepRunning: "Keep running", shipWinner: "Ship the winner", stop: "Stop" };
  const planned = plan && plan.available ? [
    h("p", {}, `To detect a ${pct(plan.lift, 0)} lift at ${pct(plan.power, 0)} power (baseline conversion ${pct(plan.baselineConversion)} in the window, `
      + `revenue per customer ${num(plan.baselineRevenuePerCustomer, 2)}, CUPAC −${pct(plan.varianceReduction, 0)}, ${num(plan.exposuresPerDay)} exposures a day; day ${plan.daysSoFar} now):`),
    table(["metric", "days, always valid", "customers, always valid", "days, fixed horizon", "customers, fixed horizon"],
      Object.entries(plan.metrics).map(([m, n]) => [m, num(n.daysAlwaysValid), num(n.customersAlwaysValid), num(n.daysFixedHorizon), num(n.customersFixedHorizon)]),
      "Planning"),
  ] : plan ? h("p", { class: "muted" }, `Planning: ${plan.reason}`) : null;
  return [
    h("h2", {}, `Experiment ${found.experiment}`),
    decision ? h("p", { class: decision.action === "shipWinner" ? "good" : decision.action === "stop" ? "bad" : "" },
      `Decision: ${actions[decision.action]}${decision.variant ? ` (${decision.variant})` : ""}: ${decision.reason}.`) : null,
    reading ? h("p", { class: reading.use === "alwaysValid" ? "bad" : "muted" }, reading.use === "alwaysValid"
      ? `Early read: use the always-valid figures, not the fixed-horizon p-values: ${reading.reason}.`
      : `Read the fixed-horizon figures: ${reading.reason}.`) : null,
    remaining(plan),
    h("p", { class: ratio.mismatch ? "bad" : "good" }, ratio.mismatch
      ? `Sample ratio mismatch (chi-square p = ${ratio.pValue.toPrecision(2)}): the assignment or the exposure logging is broken; do not trust the lift.`
      : `Sample ratio as configured (chi-square p = ${ratio.pValue.toPrecision(2)}).`),
    h("p", { class: "muted" }, `Control ${found.control}; outcomes within ${found.windowDays} days of first exposure; ${num(found.windowsStillOpen)} windows still open; as of ${when(found.asOf)}.`),
    table(header, rows(found.variants), "Per variant"),
    intervalChart("Conversion per variant (95% interval)",
      variants.filter(([, v]) => v.conversionInterval).map(([n, v]) => [n, v.conversion, ...v.conversionInterval]), (x) => pct(x)),
    intervalChart("Revenue per exposed customer (95% interval)",
      variants.filter(([, v]) => v.revenuePerCustomerInterval).map(([n, v]) => [n, v.revenuePerCustomer, ...v.revenuePerCustomerInterval]), (x) => num(x, 2)),
    planned,
    lifts.length ? intervalChart("Conversion lift against control by segment (absolute; always-valid 95% sequence, BH-adjusted across segments)", lifts, (x) => `${(x * 100).toFixed(1)} pts`) : null,
    Object.entries(found.segments).map(([segment, t]) => [h("h3", {}, `Segment ${segment}`), table(header, rows(t))]),
  ];
}

// How long the experiment still needs to detect the planned lift, read daily (always valid), by its
// first metric (conversion): the days the planning needs less the days it has run.
function remaining(plan) {
  if (!plan || !plan.available) return null;
  const [metric, needs] = Object.entries(plan.metrics)[0];
  const left = Math.max(0, Math.ceil(needs.daysAlwaysValid - plan.daysSoFar));
  return h("p", {}, left > 0
    ? `Time remaining: about ${num(left)} more days (${metric}: ${num(Math.ceil(needs.daysAlwaysValid))} days needed to detect a ${pct(plan.lift, 0)} lift, day ${plan.daysSoFar} now).`
    : `Time remaining: none: it has run the ${num(Math.ceil(needs.daysAlwaysValid))} days the planning needs (${metric}).`);
}

// ------------------------------------------------------------------ routing

const ROUTES = [
  [/^#\/segment\/([^/]+)$/, (m) => segmentPage(decodeURIComponent(m[1]))],
  [/^#\/customer\/([^/]+)$/, (m) => customerPage(decodeURIComponent(m[1]))],
  [/^#\/rules$/, () => rulesPage()],
  [/^#\/experiments$/, () => experimentsPage()],
  [/^#\/experiment\/([^/]+)$/, (m) => experimentPage(decodeURIComponent(m[1]))],
  [/^.*$/, () => segmentsPage()],
];

let rendering = 0; // a page that finishes after a newer one was asked for is dropped

async function render() {
  const mine = ++rendering;
  const signedIn = Boolean(sessionStorage.getItem(KEY));
  $("#key-form").hidden = signedIn;
  $("#search").hidden = !signedIn;
  $("#sign-out").hidden = !signedIn;
  $("#view").replaceChildren();
  alarm("");
  $("#key-error").textContent = signedIn ? "" : refusal;
  refusal = "";
  if (!signedIn) {
    say("");
    return;
  }
  const [pattern, page] = ROUTES.find(([p]) => p.test(location.hash));
  say("Loading…");
  try {
    const shown = (await page(location.hash.match(pattern))).flat(3).filter(Boolean);
    if (mine !== rendering) return;
    $("#view").replaceChildren(...shown);
    say(notice);
    notice = "";
    const title = $("#view h2");
    document.title = `${title ? title.textContent : "Console"} · Audience Engine`;
  } catch (error) {
    if (mine !== rendering) return;
    say("");
    if (error.status === 403 || error.status === 401) {
      sessionStorage.removeItem(KEY);
      refusal = `The API refused this key (${error.status}): it is wrong or was revoked. Enter a valid API key.`;
      render();
      $("#key").focus();
      return;
    }
    alarm(error.status === 404 ? `Not found: ${error.message}` : `The API answered ${error.status || "nothing"}: ${error.message}`);
  }
}

$("#key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY, $("#key").value.trim());
  $("#key").value = "";
  render();
});
$("#sign-out").addEventListener("click", () => { sessionStorage.removeItem(KEY); render(); });
$("#search").addEventListener("submit", (event) => {
  event.preventDefault();
  location.hash = `#/customer/${enc($("#search-id").value.trim())}`;
});
window.addEventListener("hashchange", render);
window.addEventListener("unhandledrejection", (event) => { event.preventDefault(); alarm(String(event.reason && event.reason.message || event.reason)); });
render();
