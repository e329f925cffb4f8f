// The Test UI page: a stream list fed by the server's __registry__ stream,
// a create/fork form, and a view that follows one stream live and appends
// to it. Stores nothing but the server URL (localStorage) and keeps no
// credentials.

import { Client, Follower, HttpError, REGISTRY, isJSONType, normalizeBase, registryChange } from "./stream.js";
import { Renderer } from "./render.js";
import { Subscriptions } from "./subs.js";

const $ = (id) => document.getElementById(id);
const STORE_KEY = "durable-ui.server";

const state = {
  prefix: "/v1/stream/", // stream prefix of the server that served the page
  client: null,
  registry: null, // Follower of __registry__
  registryOn: false,
  registryRetry: 0, // timer asking again for a missing registry
  streams: new Map(), // path -> info from the registry (or {} when opened by hand)
  selected: "",
  view: null, // {path, follower, renderer, meta, info, ended}
  producerId: "ui-" + randomHex(6),
  producers: new Map(), // path -> {epoch, seq, pending}
  subs: null,
};

function randomHex(n) {
  const b = new Uint8Array(n);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function say(id, text, kind = "") {
  const e = $(id);
  e.textContent = text;
  e.dataset.kind = kind;
}

function errText(err) {
  return err instanceof Error ? err.message : String(err);
}

// ------------------------------------------------------------ server

async function init() {
  try {
    const res = await fetch("config.json", { cache: "no-store" });
    if (res.ok) {
      const cfg = await res.json();
      if (typeof cfg.streamPrefix === "string") state.prefix = cfg.streamPrefix;
    }
  } catch {
    // served without config.json: keep the default prefix
  }
  let base = location.origin + state.prefix;
  const saved = localStorage.getItem(STORE_KEY);
  if (saved) {
    try {
      base = normalizeBase(saved, state.prefix);
    } catch {
      localStorage.removeItem(STORE_KEY);
    }
  }
  bindEvents();
  connect(base);
  const m = /^#stream=(.+)$/.exec(location.hash);
  if (m) select(decodeURIComponent(m[1]));
}

function connect(base) {
  state.registry?.stop();
  closeView();
  state.subs?.stop();
  state.client = new Client(base);
  state.streams.clear();
  state.registryOn = false;
  $("server-url").value = base;
  if (base === location.origin + state.prefix) localStorage.removeItem(STORE_KEY);
  else localStorage.setItem(STORE_KEY, base);
  renderList();
  say("create-msg", "");
  say("conn", "connecting…");
  startRegistry();
  state.subs = new Subscriptions(state.client, $("subs"), $("subs-body"), (path) => select(path));
  state.subs.start();
}

// startRegistry follows the server's __registry__ stream into the list. A
// server without one (yet: the reference server creates it with its first
// event) is asked again after the page creates a stream and every 10 s.
function startRegistry() {
  state.registry?.stop();
  clearTimeout(state.registryRetry);
  const prefixPath = new URL(state.client.base).pathname;
  state.registry = new Follower(state.client, REGISTRY, {
    mode: "auto",
    onBatch: (b) => {
      const text = typeof b.data === "string" ? b.data : new TextDecoder().decode(b.data);
      let events;
      try {
        events = JSON.parse(text);
      } catch {
        say("conn", "the __registry__ stream holds data that is not JSON", "error");
        return;
      }
      for (const ev of Array.isArray(events) ? events : [events]) applyRegistry(registryChange(ev, prefixPath));
      renderList();
    },
    onState: (s, detail) => {
      state.registryOn = true;
      $("registry-note").hidden = true;
      const words = {
        "catching-up": "reading the registry…",
        "live-sse": "connected · live (SSE)",
        "live-long-poll": `connected · live (long-poll${detail ? ": " + detail : ""})`,
        reconnecting: `reconnecting… (${detail})`,
      };
      say("conn", words[s] || s, s === "reconnecting" ? "warn" : "ok");
    },
    onEnd: (reason) => {
      if (reason === "stopped") return;
      state.registryOn = false;
      const note = $("registry-note");
      note.hidden = false;
      if (reason === "gone") {
        state.registryRetry = setTimeout(startRegistry, 10000);
        note.textContent =
          "This server keeps no __registry__ stream, so streams cannot be listed: open them by path. " +
          "(durable serve keeps one unless --registry=false.)";
        say("conn", "connected · no registry", "warn");
      } else {
        note.textContent = "The registry stream ended: " + (reason === "closed" ? "it was closed." : errText(reason));
        say("conn", "registry unavailable", "error");
      }
      renderList();
    },
  });
  state.registry.start();
}

function applyRegistry(ch) {
  if (!ch || ch.path === REGISTRY) return;
  if (ch.op === "add") state.streams.set(ch.path, ch.info);
  else state.streams.delete(ch.path);
  if (state.view && state.view.path === ch.path) {
    state.view.info = state.streams.get(ch.path) || state.view.info;
    showMeta();
  }
}

// ------------------------------------------------------------ list

function visiblePaths() {
  const f = $("filter").value.trim().toLowerCase();
  return [...state.streams.keys()].filter((p) => !f || p.toLowerCase().includes(f)).sort();
}

function renderList() {
  const ul = $("stream-list");
  const paths = visiblePaths();
  ul.replaceChildren(
    ...paths.map((p, i) => {
      const li = document.createElement("li");
      li.id = "opt-" + i;
      li.setAttribute("role", "option");
      li.dataset.path = p;
      li.setAttribute("aria-selected", String(p === state.selected));
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = p;
      const type = document.createElement("span");
      type.className = "type";
      type.textContent = shortType(state.streams.get(p)?.contentType);
      li.append(name, type);
      return li;
    }),
  );
  const sel = paths.indexOf(state.selected);
  if (sel >= 0) ul.setAttribute("aria-activedescendant", "opt-" + sel);
  else ul.removeAttribute("aria-activedescendant");
  $("stream-count").textContent = state.streams.size ? String(state.streams.size) : "";
  $("stream-paths").replaceChildren(
    ...[...state.streams.keys()].sort().map((p) => {
      const o = document.createElement("option");
      o.value = p;
      return o;
    }),
  );
}

function shortType(ct) {
  if (!ct) return "";
  const b = ct.split(";")[0].trim();
  return { "application/json": "json", "application/octet-stream": "binary", "text/plain": "text" }[b] || b;
}

function moveSelection(delta, absolute) {
  const paths = visiblePaths();
  if (paths.length === 0) return;
  let i = paths.indexOf(state.selected);
  if (absolute !== undefined) i = absolute < 0 ? paths.length - 1 : absolute;
  else i = i < 0 ? (delta > 0 ? 0 : paths.length - 1) : Math.min(paths.length - 1, Math.max(0, i + delta));
  select(paths[i]);
  document.querySelector(`#stream-list [data-path="${CSS.escape(paths[i])}"]`)?.scrollIntoView({ block: "nearest" });
}

// ------------------------------------------------------------ stream view

function closeView() {
  if (state.view) state.view.follower?.stop();
  state.view = null;
  state.selected = "";
  $("view").hidden = true;
  $("empty").hidden = false;
}

async function select(path) {
  if (!path) return;
  if (state.view && state.view.path === path) return;
  closeView();
  state.selected = path;
  history.replaceState(null, "", "#stream=" + encodeURIComponent(path));
  renderList();
  $("empty").hidden = true;
  $("view").hidden = false;
  $("view-path").textContent = path;
  $("messages").replaceChildren();
  say("view-msg", "");
  say("append-msg", "");
  $("delete-confirm").hidden = true;
  const view = { path, info: state.streams.get(path) || null, meta: null, ended: "" };
  state.view = view;
  let meta;
  try {
    meta = await state.client.head(path);
  } catch (err) {
    if (state.view !== view) return;
    say("view-msg", errText(err), "error");
    setBadges("unknown", "");
    return;
  }
  if (state.view !== view) return;
  if (!meta) {
    view.ended = "gone";
    setBadges("not found", "");
    say("view-msg", path === REGISTRY ? "This server keeps no __registry__ stream." : "No stream at this path.", "warn");
    showMeta();
    setAppend();
    return;
  }
  view.meta = meta;
  showMeta();
  setAppend();
  follow(view);
}

function follow(view) {
  view.follower?.stop();
  view.renderer = new Renderer($("messages"), view.meta.contentType);
  const f = new Follower(state.client, view.path, {
    mode: $("follow-mode").value,
    onBatch: (b) => {
      if (state.view !== view) return;
      view.renderer.add(b);
      view.meta.nextOffset = b.nextOffset || view.meta.nextOffset;
      $("m-tail").textContent = view.meta.nextOffset;
      const box = $("messages");
      if (box.scrollHeight - box.scrollTop - box.clientHeight < 120 || view.stick) box.scrollTop = box.scrollHeight;
    },
    onState: (s, detail) => {
      if (state.view !== view) return;
      const words = {
        "catching-up": "catching up",
        "live-sse": "live · SSE",
        "live-long-poll": "live · long-poll" + (detail ? ` (${detail})` : ""),
        reconnecting: "reconnecting…",
      };
      $("view-live").textContent = words[s] || s;
      $("view-live").dataset.state = s;
      if (s === "reconnecting") say("view-msg", detail, "warn");
      else if ($("view-msg").dataset.kind === "warn") say("view-msg", "");
    },
    onEnd: (reason) => {
      if (state.view !== view || reason === "stopped") return;
      if (reason === "closed" || reason === "gone") {
        view.ended = reason;
        view.renderer.end(reason, f.offset);
        $("messages").scrollTop = $("messages").scrollHeight;
        if (reason === "closed") view.meta.closed = true;
        $("view-live").textContent = "ended";
        $("view-live").dataset.state = "ended";
        showMeta();
        setAppend();
      } else {
        $("view-live").textContent = "stopped";
        say("view-msg", "Following stopped: " + errText(reason), "error");
      }
    },
  });
  view.follower = f;
  view.stick = true;
  f.start();
  setTimeout(() => (view.stick = false), 1500);
}

function setBadges(stateText, live) {
  const s = $("view-state");
  s.textContent = stateText;
  s.dataset.state = stateText;
  $("view-live").textContent = live;
}

function showMeta() {
  const v = state.view;
  if (!v) return;
  const m = v.meta;
  const info = v.info || {};
  const stateText = v.ended === "gone" ? "deleted" : m?.closed ? "closed" : m ? "open" : "not found";
  setBadges(stateText, $("view-live").textContent);
  $("m-type").textContent = m?.contentType || info.contentType || "—";
  $("m-tail").textContent = m?.nextOffset || "—";
  $("m-closed").textContent = m ? (m.closed ? "yes" : "no") : "—";
  $("m-expiry").textContent = !m
    ? "—"
    : m.ttl !== null
      ? `TTL ${m.ttl} s (renewed by each read or write)`
      : m.expiresAt
        ? `expires at ${m.expiresAt}`
        : "none";
  const fork = $("m-fork");
  fork.replaceChildren();
  if (info.forkedFrom) {
    const a = document.createElement("a");
    a.href = "#stream=" + encodeURIComponent(info.forkedFrom);
    a.textContent = info.forkedFrom;
    a.addEventListener("click", (e) => {
      e.preventDefault();
      select(info.forkedFrom);
    });
    fork.append(a, ` at ${info.forkOffset || "its tail"}` + (info.forkSubOffset ? ` +${info.forkSubOffset}` : ""));
  } else {
    fork.textContent = v.info ? "—" : "unknown (not in the registry)";
  }
  $("m-created").textContent = info.createdAt ? new Date(info.createdAt).toISOString() : "—";
  const open = !!m && !m.closed && !v.ended;
  $("close-stream").disabled = !open;
  $("delete-stream").disabled = !m || v.ended === "gone";
  $("fork").disabled = !m || v.ended === "gone";
}

// ------------------------------------------------------------ append

function producerFor(path) {
  let p = state.producers.get(path);
  if (!p) {
    p = { epoch: 0, seq: 0, pending: null };
    state.producers.set(path, p);
  }
  return p;
}

function setAppend() {
  const v = state.view;
  const form = $("append-form");
  const writable = v && v.meta && !v.meta.closed && !v.ended && v.path !== REGISTRY;
  form.hidden = !writable;
  if (!writable) return;
  const json = isJSONType(v.meta.contentType);
  $("append-format").textContent = json ? "JSON (validated before sending)" : `text, sent as ${v.meta.contentType}`;
  $("append-body").placeholder = json
    ? 'A JSON value, e.g. {"n": 1}; an array appends its elements. Enter sends, Shift+Enter adds a line'
    : "Text to append. Enter sends, Shift+Enter adds a line";
  showProducer();
}

function showProducer() {
  const v = state.view;
  if (!v) return;
  const on = $("producer").checked;
  const p = producerFor(v.path);
  $("producer-info").textContent = on ? `Producer-Id ${state.producerId} · epoch ${p.epoch} · next seq ${p.seq}` : "";
}

async function send() {
  const v = state.view;
  if (!v || !v.meta || v.sending) return;
  const area = $("append-body");
  const text = area.value;
  if (text.trim() === "") {
    say("append-msg", "Nothing to send.", "warn");
    return;
  }
  if (isJSONType(v.meta.contentType)) {
    let value;
    try {
      value = JSON.parse(text);
    } catch (err) {
      say("append-msg", "Invalid JSON, nothing sent: " + err.message, "error");
      area.setAttribute("aria-invalid", "true");
      return;
    }
    if (Array.isArray(value) && value.length === 0) {
      say("append-msg", "An empty array appends nothing; nothing sent.", "error");
      return;
    }
  }
  area.removeAttribute("aria-invalid");
  const useProducer = $("producer").checked;
  const p = producerFor(v.path);
  let producer = null;
  if (useProducer) {
    if (p.pending && p.pending.body !== text) {
      // The unconfirmed message was edited: a new epoch fences it off.
      p.epoch++;
      p.seq = 0;
      p.pending = null;
    }
    producer = { id: state.producerId, epoch: p.epoch, seq: p.seq };
  }
  v.sending = true;
  $("send").disabled = true;
  say("append-msg", "sending…");
  try {
    const next = await appendWithRetry(v.path, v.meta.contentType, text, producer);
    if (useProducer) {
      p.seq++;
      p.pending = null;
    }
    area.value = "";
    say("append-msg", `Appended; the stream's tail is now ${next}.`, "ok");
  } catch (err) {
    if (err instanceof HttpError && err.status === 0) {
      if (useProducer) {
        p.pending = { body: text };
        say("append-msg", "Not confirmed (server unreachable). Press Enter to send it again with the same Producer-Seq: the server drops it if the first one landed.", "error");
      } else {
        say("append-msg", "Server unreachable: the append may or may not have landed, so it is not retried. The idempotent producer makes retries safe.", "error");
      }
    } else {
      say("append-msg", errText(err), "error");
    }
  } finally {
    v.sending = false;
    $("send").disabled = false;
    showProducer();
  }
}

// appendWithRetry sends once without a producer; with one, it retries
// transient failures a few times (the server drops a duplicate).
async function appendWithRetry(path, ct, body, producer) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await state.client.append(path, ct, body, producer);
    } catch (err) {
      const transient = err instanceof HttpError && (err.status === 0 || err.status >= 500 || err.status === 429);
      if (!producer || !transient || attempt >= 4) throw err;
      await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
    }
  }
}

// ------------------------------------------------------------ create / close / delete

function validPath(p) {
  if (!p) return "a path is needed";
  if (p.startsWith("/") || p.endsWith("/") || p.includes("//")) return "no leading, trailing or double slashes";
  if (p.split("/").some((s) => s === "." || s === "..")) return "no . or .. segments";
  if (p === "__ds" || p.startsWith("__ds/")) return "__ds is reserved";
  return "";
}

async function create(form) {
  const f = new FormData(form);
  const path = String(f.get("path")).trim();
  const bad = validPath(path);
  if (bad) return say("create-msg", "Path: " + bad, "error");
  let ct = String(f.get("contentType"));
  if (ct === "") ct = String(f.get("otherType")).trim();
  const ttl = String(f.get("ttl")).trim();
  const expiresAt = String(f.get("expiresAt")).trim();
  if (ttl && expiresAt) return say("create-msg", "Give a TTL or an expiry time, not both.", "error");
  const forkFrom = $("fork-details").open ? String(f.get("forkFrom")).trim() : "";
  const o = { contentType: ct, ttl, expiresAt, closed: f.get("closed") === "on" };
  if (forkFrom) {
    o.forkFrom = forkFrom;
    o.forkOffset = String(f.get("forkOffset")).trim();
    o.forkSubOffset = String(f.get("forkSubOffset")).trim();
  }
  if (!ct) return say("create-msg", "Choose a content type.", "error");
  try {
    const status = await state.client.create(path, o);
    say("create-msg", status === 201 ? `Created ${path}.` : `${path} already exists with this configuration.`, "ok");
    if (!state.registryOn && !state.streams.has(path)) {
      state.streams.set(path, null);
      renderList();
      startRegistry(); // a reference server creates its registry now
    }
    // The next stream starts from the same content type, nothing else.
    for (const name of ["path", "ttl", "expiresAt", "forkFrom", "forkOffset", "forkSubOffset"]) form.elements[name].value = "";
    form.elements.closed.checked = false;
    $("fork-details").open = false;
    await select(path);
  } catch (err) {
    say("create-msg", errText(err), "error");
  }
}

async function closeStream() {
  const v = state.view;
  if (!v) return;
  try {
    await state.client.close(v.path);
    say("view-msg", "Closed: no more appends; readers see the end of the stream.", "ok");
    const meta = await state.client.head(v.path);
    if (meta && state.view === v) v.meta = meta;
    showMeta();
    setAppend();
  } catch (err) {
    say("view-msg", errText(err), "error");
  }
}

async function deleteStream() {
  const v = state.view;
  if (!v) return;
  $("delete-confirm").hidden = true;
  try {
    await state.client.remove(v.path);
    if (!state.registryOn) {
      state.streams.delete(v.path);
      renderList();
    }
    say("view-msg", "Deleted.", "ok");
    v.ended = "gone";
    showMeta();
    setAppend();
  } catch (err) {
    say("view-msg", errText(err), "error");
  }
}

// setCreateType selects ct in the create form (as "other" when the list
// lacks it), as a fork must have its source's type.
function setCreateType(ct) {
  const form = $("create-form");
  const select = form.elements.contentType;
  const listed = [...select.options].some((o) => o.value === ct && ct !== "");
  select.value = listed ? ct : "";
  form.elements.otherType.value = listed ? "" : ct;
  form.querySelector(".other-type").hidden = listed;
}

function forkThis() {
  const v = state.view;
  if (!v) return;
  const form = $("create-form");
  $("fork-details").open = true;
  form.elements.forkFrom.value = v.path;
  setCreateType(v.meta?.contentType || "");
  form.elements.forkOffset.value = v.meta?.nextOffset || "";
  form.elements.path.value = v.path + "-fork";
  form.elements.path.focus();
  form.elements.path.select();
}

// ------------------------------------------------------------ events

function isTyping(e) {
  const t = e.target;
  return t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement;
}

function bindEvents() {
  $("server-form").addEventListener("submit", (e) => {
    e.preventDefault();
    try {
      connect(normalizeBase($("server-url").value, state.prefix));
    } catch (err) {
      say("conn", errText(err), "error");
    }
  });
  $("filter").addEventListener("input", renderList);
  $("filter").addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown") {
      e.preventDefault();
      $("stream-list").focus();
      moveSelection(1);
    } else if (e.key === "Escape") {
      $("filter").value = "";
      renderList();
    }
  });
  const list = $("stream-list");
  list.addEventListener("click", (e) => {
    const li = e.target.closest("li[data-path]");
    if (li) {
      select(li.dataset.path);
      list.focus();
      // On a narrow screen the stream view is below the list.
      if (matchMedia("(max-width: 760px)").matches) $("view").scrollIntoView({ block: "start" });
    }
  });
  list.addEventListener("keydown", (e) => {
    const keys = { ArrowDown: [1], ArrowUp: [-1], Home: [0, 0], End: [0, -1] };
    if (keys[e.key]) {
      e.preventDefault();
      moveSelection(...keys[e.key]);
    } else if (e.key === "Enter" && state.view) {
      e.preventDefault();
      const area = $("append-body");
      if (!$("append-form").hidden) area.focus();
      else $("messages").focus();
    }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "/" && !isTyping(e)) {
      e.preventDefault();
      $("filter").focus();
    }
  });
  $("open-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const p = $("open-path").value.trim();
    const bad = validPath(p);
    if (bad) return;
    if (!state.registryOn && !state.streams.has(p)) {
      state.streams.set(p, null);
      renderList();
    }
    select(p);
  });
  $("open-registry").addEventListener("click", (e) => {
    e.preventDefault();
    select(REGISTRY);
  });
  const form = $("create-form");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    create(form);
  });
  form.elements.contentType.addEventListener("change", () => {
    form.querySelector(".other-type").hidden = form.elements.contentType.value !== "";
  });
  form.elements.forkFrom.addEventListener("change", () => {
    const ct = state.streams.get(form.elements.forkFrom.value.trim())?.contentType;
    if (ct) setCreateType(ct);
  });
  $("append-form").addEventListener("submit", (e) => {
    e.preventDefault();
    send();
  });
  $("append-body").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });
  $("producer").addEventListener("change", showProducer);
  $("follow-mode").addEventListener("change", () => {
    const v = state.view;
    if (v && v.meta && !v.ended) follow(v);
  });
  $("refresh").addEventListener("click", async () => {
    const v = state.view;
    if (!v) return;
    try {
      const meta = await state.client.head(v.path);
      if (state.view !== v) return;
      if (meta) v.meta = { ...meta, nextOffset: meta.nextOffset };
      else v.ended = "gone";
      showMeta();
      setAppend();
    } catch (err) {
      say("view-msg", errText(err), "error");
    }
  });
  $("fork").addEventListener("click", forkThis);
  $("close-stream").addEventListener("click", closeStream);
  $("delete-stream").addEventListener("click", () => {
    $("delete-confirm").hidden = false;
    $("delete-confirm").focus();
  });
  $("delete-confirm").addEventListener("click", deleteStream);
  $("delete-confirm").addEventListener("blur", () => setTimeout(() => ($("delete-confirm").hidden = true), 200));
}

init();
