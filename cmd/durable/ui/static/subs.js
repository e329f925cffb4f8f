// Subscriptions view (PROTOCOL.md §6–7): each watched subscription's type,
// pattern, status, generation (and the last wake event of a pull-wake
// subscription), and the acked offset of each of its streams next to the
// stream's tail. The protocol reads subscriptions by id; a server that also
// lists them under __ds/subscriptions (durable serve does, with each
// subscription's lease) fills the list by itself. Refreshed every two
// seconds while the section is open. Tokens are never shown or kept.

import { isJSONType } from "./stream.js";

const POLL_MS = 2000;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

export class Subscriptions {
  constructor(client, section, body, openStream) {
    this.client = client;
    this.section = section;
    this.body = body;
    this.openStream = openStream;
    this.watched = new Set(); // ids typed by the user (memory only)
    this.listed = null; // ids the server lists, or null when it lists none
    this.canList = undefined; // whether the server lists subscriptions (asked once)
    this.wakes = new Map(); // id -> {stream, offset, last}: wake events read so far
    this.timer = 0;
    this.stopped = false;
    this.onToggle = () => (this.section.open ? this.refresh() : clearTimeout(this.timer));
  }

  start() {
    this.section.hidden = false;
    this.section.addEventListener("toggle", this.onToggle);
    this.renderShell();
    if (this.section.open) this.refresh();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.section.removeEventListener("toggle", this.onToggle);
  }

  // url is the URL of the subscription API's collection, or of one
  // subscription (its id is one path segment, whatever it holds).
  url(id) {
    const list = this.client.url("__ds/subscriptions");
    return id === undefined ? list : list + "/" + encodeURIComponent(id);
  }

  async getJSON(url) {
    const res = await fetch(url, { cache: "no-store", headers: { Accept: "application/json" } });
    let body = null;
    try {
      body = await res.json();
    } catch {
      // not JSON: the caller looks at the status
    }
    return { status: res.status, body };
  }

  renderShell() {
    const form = el("form", "inline");
    form.autocomplete = "off";
    const label = el("label", "", "Watch subscription ");
    const input = el("input");
    input.id = "sub-id";
    input.placeholder = "subscription id";
    input.spellcheck = false;
    label.append(input);
    const button = el("button", "", "Watch");
    button.type = "submit";
    form.append(label, button);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const id = input.value.trim();
      if (!id) return;
      this.watched.add(id);
      input.value = "";
      this.refresh();
    });
    this.list = el("div", "subs-list");
    this.note = el("p", "note");
    this.body.replaceChildren(form, this.note, this.list);
  }

  // refresh loads the view now and then every POLL_MS while the section is
  // open; a refresh asked for during a load runs right after it.
  async refresh() {
    clearTimeout(this.timer);
    if (this.stopped || !this.section.open) return;
    if (this.loading) {
      this.again = true;
      return;
    }
    this.loading = true;
    try {
      await this.load();
    } catch (err) {
      this.note.textContent = "Cannot read subscriptions: " + (err instanceof Error ? err.message : err);
    } finally {
      this.loading = false;
    }
    if (this.stopped || !this.section.open) return;
    if (this.again) {
      this.again = false;
      this.refresh();
    } else {
      this.timer = setTimeout(() => this.refresh(), POLL_MS);
    }
  }

  async load() {
    this.listed = null;
    if (this.canList !== false) {
      const listing = await this.getJSON(this.url());
      const rows = Array.isArray(listing.body) ? listing.body : listing.body?.subscriptions;
      this.canList = listing.status === 200 && Array.isArray(rows);
      if (this.canList) this.listed = rows;
    }
    this.note.textContent = this.listed
      ? this.listed.length === 0 && this.watched.size === 0
        ? "No subscriptions yet."
        : ""
      : "This server does not list its subscriptions: watch one by id.";
    const subs = new Map();
    for (const s of this.listed || []) {
      const id = s.id ?? s.subscription_id;
      if (typeof id === "string") subs.set(id, s.streams ? s : null);
    }
    for (const id of this.watched) if (!subs.get(id)) subs.set(id, null);
    const cards = [];
    for (const [id, known] of [...subs].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      let sub = known;
      let missing = false;
      if (!sub) {
        const r = await this.getJSON(this.url(id));
        if (r.status === 200 && r.body) sub = r.body;
        else missing = true;
      }
      cards.push(missing ? this.missingCard(id) : await this.card(id, sub));
    }
    this.list.replaceChildren(...cards);
  }

  // lastWake reads the wake events of a pull-wake subscription that its wake
  // stream got since the last refresh and returns the latest one for id.
  async lastWake(id, stream) {
    if (typeof stream !== "string" || !stream) return null;
    let w = this.wakes.get(id);
    if (!w || w.stream !== stream) {
      w = { stream, offset: "-1", last: null };
      this.wakes.set(id, w);
    }
    for (let chunk = 0; chunk < 50; chunk++) {
      const res = await this.client.request("GET", stream, {}, { offset: w.offset });
      if (!res.ok) {
        await res.body?.cancel();
        break;
      }
      const text = await res.text();
      for (const ev of parseEvents(text, res.headers.get("Content-Type"))) {
        if (ev && ev.type === "wake" && ev.subscription_id === id) w.last = ev;
      }
      const next = res.headers.get("Stream-Next-Offset");
      if (!next || next === w.offset) break;
      w.offset = next;
      if (res.headers.get("Stream-Up-To-Date") === "true" || res.headers.get("Stream-Closed") === "true") break;
    }
    return w.last;
  }

  missingCard(id) {
    const c = el("article", "sub missing");
    c.dataset.id = id;
    c.append(el("h3", "", id), el("p", "note", "not found (deleted, or never created)"));
    return c;
  }

  async card(id, sub) {
    const c = el("article", "sub");
    c.dataset.id = id;
    const head = el("h3", "", id);
    const status = el("span", "badge", sub.status || "");
    status.dataset.state = sub.status || "";
    head.append(" ", status);
    const dl = el("dl", "meta");
    const add = (k, v) => {
      if (v === undefined || v === null || v === "") return;
      const d = el("div");
      d.append(el("dt", "", k), el("dd", "", v));
      dl.append(d);
    };
    add("Type", sub.type);
    add("Pattern", sub.pattern);
    add("Webhook", sub.webhook?.url);
    add("Wake stream", sub.wake_stream);
    add("Lease TTL", sub.lease_ttl_ms ? `${sub.lease_ttl_ms} ms` : "");
    // Leases are not in the protocol's GET; durable serve adds "lease" (the
    // wake in flight) to the views it lists.
    add("Generation", sub.generation);
    const lease = sub.lease;
    if (lease && typeof lease === "object") {
      add("Wake", lease.wake_id);
      add(
        "Lease",
        lease.claimed
          ? `held by ${lease.holder || "its receiver"}${lease.expires_at ? " until " + lease.expires_at : ""}`
          : "wake issued, not claimed yet",
      );
    } else if (this.canList) {
      add("Lease", "none (idle)");
    }
    add("Next delivery", sub.next_attempt_at);
    add("Description", sub.description);
    const wake = await this.lastWake(id, sub.wake_stream);
    if (wake) add("Last wake", `generation ${wake.generation} · ${wake.stream} · ${new Date(wake.ts).toISOString()}`);
    c.append(head, dl);
    const streams = Array.isArray(sub.streams) ? sub.streams : [];
    if (streams.length) {
      const table = el("table", "sub-streams");
      const hr = el("tr");
      for (const h of ["Stream", "Link", "Acked offset", "Tail", ""]) hr.append(el("th", "", h));
      table.append(hr);
      const tails = await Promise.all(
        streams.map((s) =>
          this.client
            .head(s.path)
            .then((m) => (m ? m.nextOffset : "gone"))
            .catch(() => "?"),
        ),
      );
      streams.forEach((s, i) => {
        const tr = el("tr");
        const name = el("td");
        const a = el("a", "", s.path);
        a.href = "#stream=" + encodeURIComponent(s.path);
        a.addEventListener("click", (e) => {
          e.preventDefault();
          this.openStream(s.path);
        });
        name.append(a);
        const acked = s.acked_offset ?? "";
        const pending = s.has_pending ?? (tails[i] !== "gone" && tails[i] !== "?" && acked < tails[i]);
        tr.append(name, el("td", "", s.link_type), el("td", "mono", acked), el("td", "mono", tails[i]), el("td", "", pending ? "pending" : ""));
        table.append(tr);
      });
      c.append(table);
    } else {
      c.append(el("p", "note", "No linked streams."));
    }
    return c;
  }
}

// parseEvents reads the JSON events of a wake stream response: a JSON
// array on a JSON stream, one JSON value per line on any other.
function parseEvents(text, contentType) {
  const json = isJSONType(contentType);
  const values = [];
  const lines = json ? [text] : text.split("\n");
  for (const line of lines) {
    if (!line.trim()) continue;
    try {
      const v = JSON.parse(line);
      if (json && Array.isArray(v)) values.push(...v);
      else values.push(v);
    } catch {
      // not an event: a wake stream may hold other messages
    }
  }
  return values;
}
