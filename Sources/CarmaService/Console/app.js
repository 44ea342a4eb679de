// The CARMA console: one page, three views (Memory, Health, Topology), over the public HTTP API.
// Every piece of data is put in the page as text (textContent, createElement): never as HTML.
"use strict";

(function () {
  const PAGE_SIZES = [10, 25, 50];   // fragments per list page (the API allows up to 1000; the console never asks for more than 50)
  const GRAPH_LIMIT = 50;     // nodes per topology drawing
  const SVG = "http://www.w3.org/2000/svg";
  const TOKEN_KEY = "carma.token";

  // ---- small DOM helpers -------------------------------------------------------------------

  /** An element with attributes and children (strings become text nodes). */
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "text") node.textContent = String(value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
    }
    return node;
  }

  function svg(tag, attributes, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (name === "text") node.textContent = String(value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, String(value));
    }
    for (const child of children.flat()) if (child) node.append(child);
    return node;
  }

  function chip(status) {
    const known = ["ok", "blank", "reconstructed"].includes(status) ? status : "unknown";
    return el("span", { class: "chip chip-" + known, "data-status": status, text: status });
  }

  function fragmentLink(id) {
    return el("a", { href: "#/fragment/" + encodeURIComponent(id), class: "fragment-link", text: id });
  }

  function facts(pairs) {
    const list = el("dl", { class: "facts" });
    for (const [label, value] of pairs) {
      if (value === undefined || value === null) continue;
      list.append(el("dt", { text: label }), el("dd", {}, value instanceof Node ? value : String(value)));
    }
    return list;
  }

  function when(timestamp) {
    if (!timestamp) return "—";
    const date = new Date(timestamp);
    return isNaN(date) ? String(timestamp) : date.toLocaleString();
  }

  function seconds(value) {
    if (value === undefined || value === null) return "—";
    if (value < 90) return Math.round(value) + " s";
    if (value < 5400) return Math.round(value / 60) + " min";
    return (value / 3600).toFixed(1) + " h";
  }

  const view = () => document.getElementById("view");

  function say(text, isError) {
    const message = document.getElementById("message");
    message.textContent = text || "";
    message.className = isError ? "error" : "";
  }

  // ---- the API -------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, problem) {
      const detail = problem && (problem.detail || problem.title);
      super(status === 401
        ? "401 Unauthorized: this server needs a bearer token for this call. Enter it in the token field above."
        : status + (detail ? " " + detail : ""));
      this.status = status;
      this.problem = problem;
    }
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  /** Calls the API; answers the parsed JSON body, or throws an ApiError for a status not in `accept`. */
  async function api(method, path, body, accept) {
    const headers = { "Accept": "application/json" };
    if (token()) headers["Authorization"] = "Bearer " + token();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
    let data = null;
    const type = response.headers.get("Content-Type") || "";
    if (type.includes("json")) data = await response.json();
    if (!response.ok && !(accept || []).includes(response.status)) throw new ApiError(response.status, data);
    return { status: response.status, data };
  }

  function fragmentPath(id, suffix) {
    return "/fragments/" + encodeURIComponent(id) + (suffix || "");
  }

  /** Runs a view's loader, showing its failure in the status line. */
  async function guarded(work) {
    try {
      await work();
    } catch (error) {
      say(error instanceof ApiError ? error.message : "Error: " + error.message, true);
    }
  }

  // ---- Memory: search, list, fragment ------------------------------------------------------

  const listState = { status: "", limit: 25, cursors: [""] };   // cursors[i]: the cursor that opens page i

  function renderMemory() {
    const root = view();
    root.replaceChildren();
    root.append(el("h2", { text: "Search" }));
    const text = el("input", { id: "search-text", class: "search-text", type: "search", required: true });
    const mode = el("select", { id: "search-mode" },
      el("option", { value: "hybrid", text: "hybrid (words and meaning)" }),
      el("option", { value: "text", text: "text (words only)" }),
      el("option", { value: "vector", text: "vector (meaning only)" }));
    const minScore = el("input", { id: "search-min-score", type: "number", min: "0", max: "1", step: "0.05", placeholder: "none" });
    const results = el("div", { id: "search-results" });
    const form = el("form", { class: "row", id: "search-form", role: "search" },
      el("label", { for: "search-text", text: "Query" }), text,
      el("label", { for: "search-mode", text: "Mode" }), mode,
      el("label", { for: "search-min-score", text: "Min score" }), minScore,
      el("button", { type: "submit", text: "Search" }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      guarded(() => search(text.value, mode.value, minScore.value, results));
    });
    root.append(form, results);

    root.append(el("h2", { text: "Fragments" }));
    const status = el("select", { id: "list-status" },
      el("option", { value: "", text: "all" }),
      el("option", { value: "ok", text: "ok" }),
      el("option", { value: "blank", text: "blank" }),
      el("option", { value: "reconstructed", text: "reconstructed" }));
    status.value = listState.status;
    status.addEventListener("change", () => {
      listState.status = status.value;
      listState.cursors = [""];
      guarded(() => loadList(listBox));
    });
    const size = el("select", { id: "list-limit" }, PAGE_SIZES.map((n) => el("option", { value: String(n), text: String(n) })));
    size.value = String(listState.limit);
    size.addEventListener("change", () => {
      listState.limit = Number(size.value);
      listState.cursors = [""];
      guarded(() => loadList(listBox));
    });
    const open = el("input", { id: "open-id", type: "text", placeholder: "fragment id" });
    const openForm = el("form", { class: "row" },
      el("label", { for: "list-status", text: "Status" }), status,
      el("label", { for: "list-limit", text: "Per page" }), size,
      el("label", { for: "open-id", text: "Open by id" }), open,
      el("button", { type: "submit", class: "secondary", text: "Open" }));
    openForm.addEventListener("submit", (event) => {
      event.preventDefault();
      if (open.value.trim()) location.hash = "#/fragment/" + encodeURIComponent(open.value.trim());
    });
    const listBox = el("div", { id: "fragment-list" });
    root.append(openForm, listBox);
    guarded(() => loadList(listBox));
  }

  async function search(text, mode, minScore, box) {
    if (!text.trim()) return;
    const request = { text, mode, k: 20 };
    if (minScore !== "") request.min_score = Number(minScore);
    const { data } = await api("POST", "/query", request);
    box.replaceChildren();
    const notes = (data.notes || []).join("; ");
    box.append(el("p", { class: "note", text:
      data.results.length + " results in " + data.took_ms + " ms, signals: " + (data.signals || []).join(", ") + (notes ? " — " + notes : "") }));
    if (data.results.length === 0) return;
    const body = el("tbody");
    for (const hit of data.results) {
      body.append(el("tr", { class: "search-hit", "data-id": hit.id },
        el("td", {}, fragmentLink(hit.id)),
        el("td", { class: "score", text: hit.score.toFixed(3) }),
        el("td", {}, chip(hit.status)),
        el("td", { class: "snippet", text: hit.content === undefined ? (hit.status === "blank" ? "(content lost; rebuild pending)" : "") : clip(hit.content, 160) })));
    }
    box.append(el("table", {}, el("thead", {}, el("tr", {}, ["id", "score", "status", "content"].map((h) => el("th", { scope: "col", text: h })))), body));
    say("");
  }

  function clip(text, length) {
    return text.length > length ? text.slice(0, length - 1) + "…" : text;
  }

  async function loadList(box) {
    const page = listState.cursors.length - 1;
    const params = new URLSearchParams({ limit: String(listState.limit) });
    if (listState.status) params.set("status", listState.status);
    if (listState.cursors[page]) params.set("cursor", listState.cursors[page]);
    const { data } = await api("GET", "/fragments?" + params);
    box.replaceChildren();
    const body = el("tbody");
    for (const item of data.items) {
      body.append(el("tr", { class: "list-row", "data-id": item.id, "data-status": item.status },
        el("td", {}, fragmentLink(item.id)),
        el("td", {}, chip(item.status), item.confidence !== undefined ? " " + item.confidence.toFixed(2) : ""),
        el("td", { text: item.version }),
        el("td", { text: item.size }),
        el("td", { text: item.tags.join(", ") }),
        el("td", { text: item.links.length })));
    }
    box.append(el("table", { id: "fragment-table" },
      el("thead", {}, el("tr", {}, ["id", "status", "version", "bytes", "tags", "links"].map((h) => el("th", { scope: "col", text: h })))), body));
    if (data.items.length === 0) box.append(el("p", { class: "note", text: "No fragments" + (listState.status ? " with status " + listState.status : "") + "." }));
    const nav = el("div", { class: "row" });
    if (page > 0) {
      nav.append(el("button", { type: "button", class: "secondary", id: "first-page", text: "First page", onclick: () => { listState.cursors = [""]; guarded(() => loadList(box)); } }));
    }
    if (data.next_cursor) {
      nav.append(el("button", { type: "button", id: "next-page", text: "Next page", onclick: () => { listState.cursors.push(data.next_cursor); guarded(() => loadList(box)); } }));
    }
    nav.append(el("span", { class: "note", text: " page " + (page + 1) }));
    box.append(nav);
  }

  async function renderFragment(id) {
    const root = view();
    root.replaceChildren(el("p", { text: "Loading " + id + "…" }));
    const { status, data } = await api("GET", fragmentPath(id), undefined, [404]);
    root.replaceChildren(el("p", {}, el("a", { href: "#/memory", text: "← Memory" })));
    if (status === 404) {
      root.append(el("h2", { text: id }), el("p", { text: "No fragment with this id (never stored, or deleted)." }));
      return;
    }
    root.append(el("h2", { id: "fragment-title" }, data.id + " ", chip(data.status)));

    if (data.status === "blank") {
      const rebuild = data.rebuild || {};
      root.append(el("div", { class: "banner banner-blank", id: "blank-banner" },
        el("strong", { text: "Blank: the content is lost and waits for repair. " }),
        facts([
          ["reason", data.reason], ["detected by", data.detected_by], ["lost at", when(data.lost_at)],
          ["rebuild state", el("span", { id: "rebuild-state", text: rebuild.state })],
          ["attempts", rebuild.attempts], ["queued at", rebuild.queued_at ? when(rebuild.queued_at) : null],
          ["last error", rebuild.last_error], ["next attempt", rebuild.next_attempt_at ? when(rebuild.next_attempt_at) : null],
          ["eta", rebuild.eta_seconds !== undefined ? seconds(rebuild.eta_seconds) : "no attempt planned yet"],
        ])));
    } else {
      if (data.status === "reconstructed") {
        const sources = el("span", { id: "reconstruction-sources" });
        (data.sources || []).forEach((source, index) => {
          if (index) sources.append(", ");
          sources.append(fragmentLink(source));
        });
        root.append(el("div", { class: "banner banner-reconstructed", id: "reconstruction-banner" },
          el("strong", { text: "Reconstructed, not the original: approximate text assembled from linked fragments. " }),
          facts([["confidence", data.confidence !== undefined ? data.confidence.toFixed(3) : "—"], ["method", data.method],
            ["reconstructed at", when(data.reconstructed_at)], ["sources", sources]])));
      }
      root.append(el("h3", { text: "Content" }), el("pre", { class: "content", id: "fragment-content", text: data.content }));
    }
    root.append(facts([["version", data.version], ["created", when(data.created_at)], ["updated", when(data.updated_at)],
      ["expires", data.expires_at ? when(data.expires_at) : null], ["checksum", data.checksum],
      ["tags", (data.tags || []).join(", ") || "—"]]));
    if (data.metadata && Object.keys(data.metadata).length) {
      root.append(el("h3", { text: "Metadata" }), el("pre", { class: "content", id: "fragment-metadata", text: JSON.stringify(data.metadata, null, 2) }));
    }
    root.append(el("p", {}, el("a", { href: "#/topology/" + encodeURIComponent(data.id), text: "Show its link graph" })));

    const columns = el("div", { class: "columns" });
    root.append(columns);
    const historyBox = el("section", { "aria-labelledby": "history-title" }, el("h3", { id: "history-title", text: "History" }));
    const contextBox = el("section", { "aria-labelledby": "links-title" }, el("h3", { id: "links-title", text: "Links" }));
    columns.append(contextBox, historyBox);
    await Promise.all([loadContext(id, data, contextBox), loadHistory(id, historyBox)]);
  }

  function neighbourList(items, emptyText, listId) {
    if (!items.length) return el("p", { class: "note", text: emptyText });
    return el("ul", { class: "plain", id: listId }, items.map((item) =>
      el("li", {}, fragmentLink(item.id), " ", chip(item.status), item.score !== undefined ? " " + Number(item.score).toFixed(3) : "")));
  }

  async function loadContext(id, fragment, box) {
    const { status, data } = await api("GET", fragmentPath(id, "/context"), undefined, [404]);
    if (status === 404) return;
    box.append(el("h4", { text: "Links to" }), neighbourList(data.links, "No links.", "links-out"));
    box.append(el("h4", { text: "Linked from" }), neighbourList(data.backlinks, "No fragment links here.", "links-in"));
    if (data.backlinks_truncated) box.append(el("p", { class: "note", text: "More backlinks were left out." }));
    if (data.similar && data.similar.length) {
      box.append(el("h4", { text: "Similar (by " + (data.similar_by || "meaning") + ")" }), neighbourList(data.similar, "", "similar"));
    }
  }

  async function loadHistory(id, box) {
    const { status, data } = await api("GET", fragmentPath(id, "/history"), undefined, [404]);
    if (status === 404) return;
    const list = el("ol", { class: "timeline", id: "history" });
    for (const event of data.events) {
      const details = [];
      for (const key of ["version", "size", "reason", "detected_by", "priority", "tier", "source", "was", "confidence", "method", "attempt", "status", "cycle"]) {
        if (event[key] !== undefined) details.push(key.replace("_", " ") + ": " + event[key]);
      }
      if (event.duration_ms !== undefined) details.push("took " + event.duration_ms + " ms");
      if (event.next_try_at) details.push("next try " + when(event.next_try_at));
      const item = el("li", { "data-kind": event.kind }, el("strong", { text: event.kind.replace("_", " ") }), " ",
        el("span", { class: "when", text: when(event.at) }), el("div", { class: "note", text: details.join(" · ") }));
      if (event.sources && event.sources.length) {
        const sources = el("div", { class: "note" }, "sources: ");
        event.sources.forEach((source, index) => { if (index) sources.append(", "); sources.append(fragmentLink(source)); });
        item.append(sources);
      }
      list.append(item);
    }
    box.append(data.events.length ? list : el("p", { class: "note", text: "No events." }));
  }

  // ---- Health --------------------------------------------------------------------------------

  function card(label, value, id) {
    return el("div", { class: "card" }, el("div", { class: "label", text: label }), el("div", { class: "value", id, text: value }));
  }

  /** Fragments by status from `/metrics` (`carma_fragments{status="…"}`), exact at any size;
   *  where the metrics cannot be read, one page of at most 50 each ("50+" beyond that). */
  async function countByStatus() {
    const statuses = ["ok", "blank", "reconstructed"];
    const headers = token() ? { "Authorization": "Bearer " + token() } : {};
    const response = await fetch("/metrics", { headers, cache: "no-store" });
    if (response.ok) {
      const found = {};
      for (const line of (await response.text()).split("\n")) {
        const match = /^carma_fragments\{status="(ok|blank|reconstructed)"\} ([0-9.e+]+)$/.exec(line.trim());
        if (match) found[match[1]] = String(Math.round(Number(match[2])));
      }
      if (statuses.every((status) => status in found)) return statuses.map((status) => found[status]);
    }
    return Promise.all(statuses.map(async (status) => {
      const { data } = await api("GET", "/fragments?" + new URLSearchParams({ status, limit: "50" }));
      return data.items.length + (data.next_cursor ? "+" : "");
    }));
  }

  async function renderHealth() {
    const root = view();
    root.replaceChildren(el("h2", { text: "Health" }));
    const dreamButton = el("button", { type: "button", id: "dream-now", text: "Dream now" });
    const dreamResult = el("p", { id: "dream-result", role: "status" });
    dreamButton.addEventListener("click", () => dreamNow(dreamButton, dreamResult));
    const body = el("div", { id: "health-body" });
    root.append(el("div", { class: "row" }, dreamButton, " ", el("button", { type: "button", class: "secondary", text: "Refresh", onclick: () => guarded(() => loadHealth(body)) })), dreamResult, body);
    await loadHealth(body);
  }

  async function loadHealth(body) {
    const [ready, dream] = await Promise.all([api("GET", "/readyz", undefined, [503]), api("GET", "/dream")]);
    const counts = await countByStatus();
    body.replaceChildren();
    const readiness = ready.data || {};
    const retrieval = readiness.retrieval || {};
    const status = dream.data;
    body.append(el("h3", { text: "Store" }), el("div", { class: "cards" },
      card("fragments", readiness.fragments ?? "—", "count-total"),
      card("ok", counts[0], "count-ok"), card("blank", counts[1], "count-blank"), card("reconstructed", counts[2], "count-reconstructed"),
      card("pending writes", readiness.pending_writes ?? "—"),
      card("retrieval", retrieval.state || (ready.status === 503 ? "not ready" : "—"), "retrieval-state"),
      card("embedding backlog", retrieval.embedding_backlog ?? "—"),
      card("embedding model", retrieval.embedding_model || "none (words only)")));
    body.append(el("h3", { text: "Repair" }), el("div", { class: "cards" },
      card("dream state", status.state, "dream-state"),
      card("queue depth", status.queue.depth, "queue-depth"),
      card("due now", status.queue.ready),
      card("waiting for retry", status.queue.waiting_for_retry),
      card("queue eta", status.queue.eta_seconds === undefined ? "—" : seconds(status.queue.eta_seconds)),
      card("next run", when(status.next_run_at) + " (in " + seconds(status.next_run_in_seconds) + ")", "next-run"),
      card("scrub", "pass " + status.scrub.pass + ", " + Math.round(status.scrub.progress * 100) + "%")));
    body.append(el("h3", { text: "Recent cycles" }), cycleChart(status.recent_cycles));
  }

  const TIERS = ["primary", "cache", "redundancy", "sketch"];

  /** Per cycle: repaired fragments by tier, reconstructed, failed. */
  function cycleNumbers(cycle) {
    const numbers = { id: cycle.id, duration: cycle.duration_ms || 0, reconstructed: 0, failed: 0 };
    for (const tier of TIERS) numbers[tier] = 0;
    for (const [tier, outcomes] of Object.entries(cycle.repairs || {})) {
      if (TIERS.includes(tier)) numbers[tier] += outcomes.recovered || 0;
    }
    numbers.reconstructed = (cycle.outcomes || {}).reconstructed || 0;
    numbers.failed = (cycle.outcomes || {}).failed || 0;
    return numbers;
  }

  function cycleChart(cycles) {
    const box = el("div", { id: "cycle-chart" });
    if (!cycles || cycles.length === 0) {
      box.append(el("p", { class: "note", text: "No cycle has run yet." }));
      return box;
    }
    const rows = cycles.slice().reverse().map(cycleNumbers);   // oldest first, left to right
    const width = 720, height = 220, top = 20, bottom = 30, left = 40, half = (width - left) / 2;
    const slot = (half - 20) / rows.length;
    const maxDuration = Math.max(1, ...rows.map((r) => r.duration));
    const stacks = ["primary", "cache", "redundancy", "sketch", "reconstructed", "failed"];
    const maxWork = Math.max(1, ...rows.map((r) => stacks.reduce((sum, key) => sum + r[key], 0)));
    const plot = height - top - bottom;
    const chart = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": "chart-title" },
      svg("title", { id: "chart-title", text: "Recent dream cycles: duration, and fragments repaired by tier, reconstructed and failed" }));
    chart.append(svg("text", { x: left, y: 14, text: "duration (max " + maxDuration.toFixed(0) + " ms)" }));
    chart.append(svg("text", { x: left + half, y: 14, text: "work (max " + maxWork + " fragments)" }));
    rows.forEach((row, index) => {
      const x = left + index * slot + 4;
      const barWidth = Math.min(48, Math.max(4, slot - 8));
      const h = (row.duration / maxDuration) * plot;
      chart.append(svg("rect", { class: "bar-duration", x, y: top + plot - h, width: barWidth, height: Math.max(h, 1) },
        svg("title", { text: "cycle " + row.id + ": " + row.duration + " ms" })));
      chart.append(svg("text", { x: x + barWidth / 2, y: height - 12, "text-anchor": "middle", text: "#" + row.id }));
      let y = top + plot;
      const wx = left + half + index * slot + 4;
      for (const key of stacks) {
        if (!row[key]) continue;
        const sh = (row[key] / maxWork) * plot;
        y -= sh;
        chart.append(svg("rect", { class: "bar-" + key, x: wx, y, width: barWidth, height: sh },
          svg("title", { text: "cycle " + row.id + ": " + key + " " + row[key] })));
      }
      chart.append(svg("text", { x: wx + barWidth / 2, y: height - 12, "text-anchor": "middle", text: "#" + row.id }));
    });
    chart.append(svg("line", { x1: left, y1: top + plot, x2: width, y2: top + plot, class: "edge" }));
    box.append(chart, el("div", { class: "legend" },
      ["duration", ...stacks].map((key) => el("span", {}, el("span", { class: "swatch sw-" + key }), key === "duration" ? "duration" : key === "reconstructed" || key === "failed" ? key : "repaired from " + key))));
    const body = el("tbody");
    for (const row of rows.slice().reverse()) {
      body.append(el("tr", {}, [row.id, row.duration.toFixed(1), ...stacks.map((key) => row[key])].map((v) => el("td", { text: v }))));
    }
    box.append(el("table", { id: "cycle-table" }, el("thead", {}, el("tr", {}, ["cycle", "ms", ...stacks].map((h) => el("th", { scope: "col", text: h })))), body));
    return box;
  }

  async function dreamNow(button, result) {
    button.disabled = true;
    result.textContent = "";
    result.className = "";
    try {
      const { data } = await api("POST", "/dream", undefined);
      result.textContent = "Dream cycle " + (data && data.id !== undefined ? data.id : "") + " started.";
      // Follow the cycle until it ends (at most a minute), then show the new state.
      for (let attempt = 0; attempt < 120; attempt++) {
        const { data: status } = await api("GET", "/dream");
        if (status.state === "idle") break;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      await loadHealth(document.getElementById("health-body"));
      result.textContent += " Finished.";
      result.setAttribute("data-done", "true");
    } catch (error) {
      result.textContent = error instanceof ApiError ? error.message : "Error: " + error.message;
      result.className = "error";
    } finally {
      button.disabled = false;
    }
  }

  // ---- Topology ------------------------------------------------------------------------------

  async function renderTopology(around) {
    const root = view();
    root.replaceChildren(el("h2", { text: "Topology" }));
    const input = el("input", { id: "topology-id", type: "text", value: around || "", placeholder: "all (first " + GRAPH_LIMIT + ")" });
    const depth = el("select", { id: "topology-depth" }, el("option", { value: "1", text: "1" }), el("option", { value: "2", text: "2" }));
    // "now", or a recent cycle (newest first): then the graph before and after that cycle, side by side.
    const cycle = el("select", { id: "topology-cycle" }, el("option", { value: "", text: "now" }));
    const form = el("form", { class: "row" },
      el("label", { for: "topology-id", text: "Around fragment" }), input,
      el("label", { for: "topology-depth", text: "Depth" }), depth,
      el("label", { for: "topology-cycle", text: "Cycle" }), cycle,
      el("button", { type: "submit", text: "Draw" }));
    const box = el("div", { id: "topology-graph" });
    const redraw = () => guarded(() => drawGraph(input.value.trim(), depth.value, cycle.value, box));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      redraw();
    });
    cycle.addEventListener("change", redraw);
    root.append(form, box);
    const { data: dream } = await api("GET", "/dream");
    for (const recent of dream.recent_cycles || []) {
      cycle.append(el("option", { value: String(recent.id), text: "cycle " + recent.id + (recent.started_at ? " (" + when(recent.started_at) + ")" : "") }));
    }
    cycle.setAttribute("data-loaded", "true");
    await drawGraph(around || "", "1", "", box);
  }

  const STATUSES = ["ok", "blank", "reconstructed"];

  /**
   * Statuses before and after a cycle, from its report: a fragment the cycle repaired (recovered or
   * reconstructed) was blank before it, and after it is what the outcome says; a failed repair
   * leaves it blank on both sides. Every other node keeps its current status on both sides.
   */
  function statusesAround(report) {
    const before = new Map(), after = new Map();
    for (const event of report.events || []) {
      if (event.action !== "repair") continue;
      if (event.outcome === "recovered" || event.outcome === "reconstructed") {
        before.set(event.id, "blank");
        after.set(event.id, event.outcome === "recovered" ? "ok" : "reconstructed");
      } else if (event.outcome === "failed" && !after.has(event.id)) {
        before.set(event.id, "blank");
        after.set(event.id, "blank");
      }
    }
    return { before, after };
  }

  /** Positions on one layout, shared by every drawing of the same graph. */
  function layout(data, around, width, height) {
    const cx = width / 2, cy = height / 2, radius = Math.min(cx, cy) - 60;
    const centre = data.nodes.find((node) => node.id === around);
    const ring = data.nodes.filter((node) => node !== centre);
    const position = new Map();
    if (centre) position.set(centre.id, [cx, cy]);
    // Two nodes opposite each other would put the centre on the edge between them: spread fewer
    // than three over a third of the circle each instead.
    const step = ring.length < 3 ? (2 * Math.PI) / 3 : (2 * Math.PI) / ring.length;
    const start = -Math.PI / 2 - (ring.length < 3 ? (step * (ring.length - 1)) / 2 : 0);
    ring.forEach((node, index) => {
      const angle = start + step * index;
      position.set(node.id, [cx + radius * Math.cos(angle), cy + radius * Math.sin(angle)]);
    });
    return { position, centre };
  }

  /** One SVG drawing of the graph; `statusOf(node)` colours it; `name` keeps its ids unique. */
  function drawing(data, placed, statusOf, name, title) {
    const width = 640, height = 480;
    const { position, centre } = placed;
    const marker = "arrow-" + name;
    const graph = svg("svg", { class: "graph", id: "topology-" + name, viewBox: `0 0 ${width} ${height}`, role: "group", "aria-label": title },
      svg("defs", {}, svg("marker", { id: marker, viewBox: "0 0 10 10", refX: 22, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
        svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#8a8a8a" }))));
    for (const edge of data.edges) {
      const from = position.get(edge.from), to = position.get(edge.to);
      if (!from || !to) continue;
      graph.append(svg("line", { class: "edge", x1: from[0], y1: from[1], x2: to[0], y2: to[1], "marker-end": "url(#" + marker + ")" }));
    }
    for (const node of data.nodes) {
      const [x, y] = position.get(node.id);
      const status = statusOf(node);
      const known = STATUSES.includes(status) ? status : "unknown";
      const label = node.id + " (" + status + (status === node.status && node.confidence !== undefined ? ", confidence " + node.confidence : "") + ")";
      const shape = svg("circle", { class: "node node-" + known, cx: x, cy: y, r: node === centre ? 16 : 12 });
      const text = svg("text", { x, y: y + 28, "text-anchor": "middle", text: clip(node.id, 24) });
      const item = known === "unknown" && node.status === status
        ? svg("g", { "data-id": node.id, "data-status": status }, svg("title", { text: label + ", not stored" }), shape, text)
        : svg("a", { href: "#/fragment/" + encodeURIComponent(node.id), class: "graph-node", "data-id": node.id, "data-status": status, "aria-label": label },
          svg("title", { text: label }), shape, text);
      graph.append(item);
    }
    return graph;
  }

  async function drawGraph(around, depth, cycle, box) {
    const params = new URLSearchParams({ format: "json", limit: String(GRAPH_LIMIT) });
    if (around) { params.set("around", around); params.set("depth", depth); }
    const [{ status, data }, report] = await Promise.all([
      api("GET", "/topology?" + params, undefined, [404]),
      cycle ? api("GET", "/dream/" + encodeURIComponent(cycle)) : Promise.resolve(null)]);
    box.replaceChildren();
    if (status === 404) {
      box.append(el("p", { text: "No fragment " + around + "." }));
      return;
    }
    const placed = layout(data, around, 640, 480);
    if (report) {
      const { before, after } = statusesAround(report.data);
      const name = "cycle " + report.data.id;
      box.append(el("div", { class: "pair", "data-cycle": report.data.id },
        el("figure", { class: "picture" }, el("figcaption", { text: "before " + name }),
          drawing(data, placed, (node) => before.get(node.id) || node.status, "before", "Link graph before " + name)),
        el("figure", { class: "picture" }, el("figcaption", { text: "after " + name }),
          drawing(data, placed, (node) => after.get(node.id) || node.status, "after", "Link graph after " + name))));
      box.append(el("p", { class: "note", id: "topology-caption", text:
        "before: computed from the cycle's report (the server keeps no past topology): a fragment the cycle repaired was blank before it; " +
        "after: as the cycle's outcomes say. Nodes without an event in the cycle are shown as they are now on both sides." +
        (report.data.events_truncated ? " The report's events were truncated: some repairs may be missing." : "") }));
    } else {
      box.append(drawing(data, placed, (node) => node.status, "now", "Link graph"));
    }
    box.append(el("div", { class: "legend", id: "topology-legend" },
      [...STATUSES, "unknown"].map((s) => el("span", {}, chip(s)))));
    const counts = Object.entries(data.counts || {}).map(([k, v]) => k + " " + v).join(", ");
    box.append(el("p", { class: "note", text: data.nodes.length + " nodes, " + data.edges.length + " edges" + (counts ? " (" + counts + ", now)" : "") +
      (data.edges_outside ? ", " + data.edges_outside + " links to nodes not drawn" : "") + (data.truncated ? "; more nodes were left out" : "") + "." }));
    if (data.truncated && data.next_after && !around) box.append(el("p", { class: "note", text: "Enter a fragment id to draw its neighbourhood." }));
    say("");
  }

  // ---- routing -------------------------------------------------------------------------------

  async function route() {
    const hash = location.hash || "#/memory";
    const [, name, ...rest] = hash.split("/");
    const argument = rest.length ? decodeURIComponent(rest.join("/")) : "";
    const current = name === "fragment" ? "memory" : name;
    for (const link of document.querySelectorAll("nav a")) {
      if (link.id === "nav-" + current) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    say("");
    await guarded(async () => {
      if (name === "fragment" && argument) await renderFragment(argument);
      else if (name === "health") await renderHealth();
      else if (name === "topology") await renderTopology(argument);
      else renderMemory();
    });
    document.body.setAttribute("data-view", current || "memory");
  }

  document.addEventListener("DOMContentLoaded", () => {
    const field = document.getElementById("token");
    field.value = token();
    document.getElementById("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      if (field.value) sessionStorage.setItem(TOKEN_KEY, field.value);
      else sessionStorage.removeItem(TOKEN_KEY);
      say(field.value ? "Token kept for this tab." : "Token cleared.");
      route();
    });
    window.addEventListener("hashchange", route);
    route();
  });
})();
