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
const when = (iso) => (iso ? new Date(iso).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" }) : "–");

function table(header, rows, caption) {
  return h("table", {},
    caption ? h("caption", { class: "muted" }, caption) : null,
    h("thead", {}, h("tr", {}, header.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, row.map((c) => h("td", {}, c))))));
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
    // shares from the measure job's KPIs (every member now); else the model's training figures
    const revenueOf = (seg) => (seg.kpis ? seg.kpis.customers * (seg.kpis.revenuePerCustomer || 0) : 0);
    const customers = rows.reduce((sum, seg) => sum + (seg.kpis ? seg.kpis.customers : 0), 0);
    const revenue = rows.reduce((sum, seg) => sum + revenueOf(seg), 0);
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
      }), "Members: customers who allow personalization (the API's member list). Customers and shares: every member, as the daily measure job last counted them (net revenue, lifetime)."));
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

async function segmentPage(id, cursor) {
  const [segment, members] = await Promise.all([
    api(`/v1/segments/${enc(id)}`),
    api(`/v1/segments/${enc(id)}/customers?limit=25${cursor ? `&cursor=${enc(cursor)}` : ""}`),
  ]);
  const k = segment.kpis;
  const view = [
    h("h2", {}, segment.name, " ", h("span", { class: "muted" }, `(${segment.kind})`)),
    h("p", {}, segment.description || segment.definition),
    h("dl", {}, h("dt", {}, "id"), h("dd", {}, segment.segmentId), h("dt", {}, "definition"), h("dd", {}, segment.definition),
      h("dt", {}, "model"), h("dd", {}, segment.modelVersion || "none (trigger rules)")),
    h("h3", {}, "Key figures"),
    k ? h("div", { class: "cards" }, card("customers", num(k.customers)), card("ordered in the last 30 days", pct(k.conversion30d)),
      card("revenue per customer (net, lifetime)", num(k.revenuePerCustomer, 2)), card("average order value", num(k.averageOrderValue, 2)),
      card(`retention, 90 days (of ${num(k.retentionBase)})`, pct(k.retention90d)))
      : h("p", { class: "muted" }, "No figures yet: the daily measure job computes them."),
    k ? h("p", { class: "muted" }, `As of ${when(k.asOf)}.`) : null,
    h("h3", {}, `Members (${num(segment.size)} who allow personalization)`),
    members.customers.length
      ? h("ul", {}, members.customers.map((c) => h("li", {}, h("a", { href: `#/customer/${enc(c)}` }, c))))
      : h("p", { class: "muted" }, "No members."),
    h("div", { class: "actions" },
      members.nextCursor ? h("a", { href: `#/segment/${enc(id)}/${enc(members.nextCursor)}` }, "Next page") : null,
      cursor ? h("a", { href: `#/segment/${enc(id)}` }, "First page") : null,
      h("button", { type: "button", onclick: () => downloadMembers(id) }, "Download members (CSV)")),
  ];
  return view;
}

async function downloadMembers(id) {
  const ids = [];
  let cursor = null;
  do {
    const page = await api(`/v1/segments/${enc(id)}/customers?limit=1000${cursor ? `&cursor=${enc(cursor)}` : ""}`);
    ids.push(...page.customers);
    cursor = page.nextCursor;
    say(`${ids.length} members read…`);
  } while (cursor);
  download(`${id.replace(/[^a-z0-9-]+/gi, "-")}-members.csv`, ["customerId", ...ids].join("\n") + "\n", "text/csv");
  say(`Downloaded ${ids.length} members.`);
}

async function customerPage(id) {
  const [customer, told, recommended] = await Promise.all([
    api(`/v1/customers/${enc(id)}`),
    api(`/v1/customers/${enc(id)}/explain`),
    api(`/v1/customers/${enc(id)}/recommendations?n=5`),
  ]);
  const p = customer.predictions, r = customer.rfm;
  const consent = h("fieldset", {}, h("legend", {}, "Consent"),
    ["analytics", "personalization", "marketing"].map((purpose) => {
      const state = customer.consent[purpose] || { granted: true };
      const box = h("input", { type: "checkbox", id: `consent-${purpose}`, checked: state.granted,
        onchange: (e) => changeConsent(customer.customerId, purpose, e.target.checked) });
      return h("div", {}, box, " ", h("label", { for: `consent-${purpose}` }, purpose),
        h("span", { class: "muted" }, state.at ? ` (${state.source}, ${when(state.at)})` : " (never asked: allowed)"));
    }));
  const tier = customer.tier;
  return [
    h("h2", {}, `Customer ${customer.customerId}`),
    h("p", { class: "muted" }, `Ids: ${customer.identities.join(", ") || customer.customerId}. First seen ${when(customer.firstSeen)}, last seen ${when(customer.lastSeen)}.`),
    h("div", { class: "cards" },
      card("learned segment", customer.segments ? customer.segments.name : "–"),
      card("RFM cell", customer.segments ? customer.segments.rfm : "–"),
      card("tier", tier ? tier.name : "none"),
      card("orders / net revenue", `${num(r.orders)} / ${num(r.netRevenue, 2)} ${customer.currency}`),
      card("12-month value (CLV)", p ? num(p.clv12m, 2) : "–"),
      card("churn risk", p && p.churnRisk !== null && p.churnRisk !== undefined ? pct(p.churnRisk) : "–"),
      card("probability alive", p ? pct(p.pAlive) : "–")),
    h("h3", {}, "Why this segment"),
    h("p", {}, told.segment ? `The model ${told.modelVersion} puts ${customer.customerId} in ${told.segment}`
      + (told.rfm ? ` (RFM ${told.rfm.r}-${told.rfm.f}-${told.rfm.m}: ${told.rfm.cell}).` : ".") : "No model places this customer yet."),
    tier ? h("p", {}, `Tier ${tier.name} since ${when(tier.since)}, by the rule ${tier.rule}.`) : null,
    h("div", { class: "columns" },
      h("div", {}, table(["feature", "value", "percentile", "as the model sees it"],
        told.features.map((f) => [f.name, f.value === null ? "–" : num(f.value, 2), f.percentile === null ? "–" : `${f.percentile}`,
          f.modelValue === null ? "–" : num(f.modelValue, 3)]), "The customer's features")),
      h("div", {}, told.scores.length ? barChart("Distance to each segment's centre (nearest wins)",
        told.scores.map((sc) => [sc.name, sc.distance]), (v) => num(v, 3)) : h("p", { class: "muted" }, "Not clustered (no order yet)."))),
    table(["trigger rule", "tier", "holds", "values compared"],
      told.rules.map((rule) => [rule.id, rule.tier, rule.holds ? "yes" : "no", JSON.stringify(rule.compared)]), "Every trigger rule"),
    p && p.churnDrivers && p.churnDrivers.length ? table(["churn driver", "customer's value", "typical", "risk it adds"],
      p.churnDrivers.map((d) => [d.feature, num(d.value, 1), num(d.typical, 1), signed(d.effect * 100, (v) => `${v.toFixed(1)} pts`)]),
      "What drives the churn risk (occlusion: the risk were the customer typical in that feature)") : null,
    h("h3", {}, "Recommended products"),
    h("p", { class: "muted" }, recommended.personalized ? "Personalized." : "Not personalized: the popular list."),
    recommended.items.length ? h("ol", {}, recommended.items.map((item) =>
      h("li", {}, `${item.name || item.productId} `, h("span", { class: "muted" }, `(${item.reason})`)))) : h("p", {}, "None."),
    h("h3", {}, "Recent moves"),
    told.moves.length ? table(["when", "from", "to", "tier", "reason"], told.moves.slice().reverse().map((m) =>
      [when(m.at), m.previous || "–", m.segment || "–", m.tier || "–", m.reason])) : h("p", { class: "muted" }, "None."),
    h("h3", {}, "Privacy"),
    consent,
    h("div", { class: "actions" },
      h("button", { type: "button", class: "secondary", onclick: () => exportCustomer(customer.customerId) }, "Export everything held (JSON)"),
      h("button", { type: "button", class: "danger", onclick: () => eraseCustomer(customer.customerId) }, "Erase this customer…")),
  ];
}

async function changeConsent(id, purpose, granted) {
  await api(`/v1/customers/${enc(id)}/consent`, { method: "PUT", body: { [purpose]: granted } });
  say(`Consent to ${purpose} ${granted ? "granted" : "refused"} for ${id}.`);
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
    reading ? h("p", { class: "muted" }, `Read the ${reading.use === "alwaysValid" ? "always-valid" : "fixed-horizon"} figures: ${reading.reason}.`) : null,
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

// ------------------------------------------------------------------ routing

const ROUTES = [
  [/^#\/segment\/([^/]+)(?:\/([^/]+))?$/, (m) => segmentPage(decodeURIComponent(m[1]), m[2] && decodeURIComponent(m[2]))],
  [/^#\/customer\/([^/]+)$/, (m) => customerPage(decodeURIComponent(m[1]))],
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
  if (!signedIn) return;
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
    if (error.status === 403) {
      sessionStorage.removeItem(KEY);
      alarm("The API refused the key (403). Enter a valid API key.");
      render();
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
