// The monitor page: polls api/state every second and renders it; the form queries tables/{table}/{key}.
// Every URL is relative to the page, so the page works behind a path prefix (kubectl proxy, the API server's
// service proxy, an Ingress path).
"use strict";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? "–"));
  return node;
}

function badge(kind, value) {
  return el("span", { class: `badge ${kind}-${value}` }, value);
}

function header(names) {
  return el("tr", {}, ...names.map((n) => el("th", {}, n)));
}

function tableRow(t) {
  const progress = t.progress === undefined ? "–" : `${Math.round(t.progress * 100)}%`;
  return [t.partition, badge("state", t.state), t.offset, t.high_watermark, progress, t.size];
}

function renderProcessor(p) {
  const box = el("div", { class: "processor", "data-group": p.group });
  const status = p.status === "running" && !p.recovered ? "recovering" : p.status;
  box.append(el("h2", {}, `processor ${p.group} `, badge("status", status)));
  if (p.error) box.append(el("pre", { class: "error" }, p.error));
  const table = el("table", { class: "partitions" });
  table.append(header(["partition", "state", "processed", "msg/s", "lag", "next offset", "table offset",
                       "recovery end", "recovery", "keys"]));
  for (const part of p.partitions) {
    const next = part.inputs.map((i) => `${i.topic}: ${i.next_offset ?? "–"}`).join(", ");
    const t = part.table || {};
    const progress = part.table ? `${Math.round(t.progress * 100)}%` : "–";
    const tr = el("tr", { class: "partition", "data-partition": part.partition, "data-state": part.state });
    for (const cell of [part.partition, badge("state", part.state), part.processed, part.rate, part.lag, next || "–",
                        t.offset, t.high_watermark, progress, t.size]) {
      tr.append(el("td", {}, cell));
    }
    table.append(tr);
  }
  for (const t of p.standby) {
    const tr = el("tr", { class: "standby", "data-partition": t.partition, "data-state": t.state });
    for (const cell of [t.partition, badge("state", t.state), "–", "–", "–", "–", t.offset, t.high_watermark,
                        `${Math.round(t.progress * 100)}%`, t.size]) {
      tr.append(el("td", {}, cell));
    }
    table.append(tr);
  }
  if (!p.partitions.length && !p.standby.length) box.append(el("p", { class: "muted" }, "no partitions assigned"));
  else box.append(table);
  if (p.last_commit_seconds !== null) {
    box.append(el("p", { class: "muted" }, `last checkpoint: ${(p.last_commit_seconds * 1000).toFixed(1)} ms`));
  }
  return box;
}

function renderView(v) {
  const box = el("div", { class: "view", "data-table": v.table });
  box.append(el("h2", {}, `view ${v.table} `, badge("status", v.error ? "failed" : v.recovered ? "running" : "recovering")));
  if (v.error) box.append(el("pre", { class: "error" }, v.error));
  const table = el("table", { class: "partitions" });
  table.append(header(["partition", "state", "offset", "recovery end", "recovery", "keys"]));
  for (const t of v.partitions) {
    const tr = el("tr", { class: "partition", "data-partition": t.partition, "data-state": t.state });
    for (const cell of tableRow(t)) tr.append(el("td", {}, cell));
    table.append(tr);
  }
  box.append(table);
  return box;
}

function fillTables(names) {
  const select = document.getElementById("query-table");
  const current = [...select.options].map((o) => o.value).join("\n");
  if (current === names.join("\n")) return;
  const chosen = select.value;
  select.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
  if (names.includes(chosen)) select.value = chosen;
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const response = await fetch("api/state", { cache: "no-store" });
    const state = await response.json();
    document.getElementById("processors").replaceChildren(...state.processors.map(renderProcessor));
    document.getElementById("views").replaceChildren(...state.views.map(renderView));
    fillTables(state.tables);
    // With a separate query port, this port does not serve /tables: say where the queries are.
    const separate = state.query_port !== null && state.query_port !== undefined;
    document.getElementById("query-form").hidden = separate;
    if (separate) {
      document.getElementById("query-result").textContent =
        `Table queries are served on port ${state.query_port}: GET /tables/{table}/{key} there.`;
    }
    status.textContent = `updated ${new Date(state.time * 1000).toLocaleTimeString()}`;
  } catch (error) {
    status.textContent = `cannot reach the server: ${error}`;
  }
}

document.getElementById("query-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const table = document.getElementById("query-table").value;
  const key = document.getElementById("query-key").value;
  const out = document.getElementById("query-result");
  const response = await fetch(`tables/${encodeURIComponent(table)}/${encodeURIComponent(key)}`);
  const body = await response.json();
  out.className = response.ok ? "found" : "missing";
  out.dataset.status = String(response.status);
  out.textContent = `${response.status}\n${JSON.stringify(body, null, 2)}`;
});

refresh();
setInterval(refresh, 1000);
