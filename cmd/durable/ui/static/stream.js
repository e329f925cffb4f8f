// Durable Streams protocol client for the Test UI: metadata, create, append,
// close, delete, and a live follower (catch-up, then SSE or long-poll) that
// resumes from its last offset after a disconnect. No dependencies.

export const REGISTRY = "__registry__";

// HttpError is a failed request: the operation, the stream path, the HTTP
// status (0 when the server could not be reached) and the server's message.
export class HttpError extends Error {
  constructor(op, path, status, message) {
    super(`${op} ${path}: ${status ? status + " " : ""}${message}`.trim());
    this.op = op;
    this.path = path;
    this.status = status;
  }
}

// normalizeBase turns what was typed in the server field into a stream base
// URL ending in "/". A URL without a path gets "/v1/stream/" (where durable
// serve and the reference server keep streams). Credentials, query and
// fragment are refused or dropped: the page keeps no secrets.
export function normalizeBase(input, defaultPrefix = "/v1/stream/") {
  let u;
  try {
    u = new URL(input.trim());
  } catch {
    throw new Error(`not a URL: ${input}`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new Error("the server URL must start with http:// or https://");
  }
  if (u.username || u.password) {
    throw new Error("credentials in the URL are not supported (the page keeps no secrets)");
  }
  let path = u.pathname;
  if (path === "/" || path === "") path = defaultPrefix;
  if (!path.endsWith("/")) path += "/";
  return `${u.protocol}//${u.host}${path}`;
}

// isJSONType reports whether a content type is application/json (the
// protocol's JSON mode); isTextType whether SSE carries it as text.
export function isJSONType(ct) {
  return baseType(ct) === "application/json";
}
export function isTextType(ct) {
  return baseType(ct).startsWith("text/") || isJSONType(ct);
}
function baseType(ct) {
  return (ct || "").split(";")[0].trim().toLowerCase();
}

function meta(res) {
  const h = res.headers;
  const ttl = h.get("Stream-TTL");
  return {
    contentType: h.get("Content-Type") || "",
    nextOffset: h.get("Stream-Next-Offset") || "",
    closed: (h.get("Stream-Closed") || "").toLowerCase() === "true",
    ttl: ttl === null ? null : Number(ttl),
    expiresAt: h.get("Stream-Expires-At"),
  };
}

async function failure(op, path, res) {
  let text = "";
  try {
    text = (await res.text()).trim().slice(0, 300);
  } catch {
    // the body is only decoration for the message
  }
  return new HttpError(op, path, res.status, text || res.statusText);
}

// Client talks to the streams under one base URL.
export class Client {
  constructor(base) {
    this.base = base;
  }

  url(path, query) {
    const p = path.split("/").map(encodeURIComponent).join("/");
    const q = query ? "?" + new URLSearchParams(query).toString() : "";
    return this.base + p + q;
  }

  async request(op, path, init, query) {
    let res;
    try {
      res = await fetch(this.url(path, query), { cache: "no-store", ...init });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new HttpError(op, path, 0, "server unreachable");
    }
    return res;
  }

  // head returns the stream's metadata, or null when it does not exist
  // (404) or was deleted (410).
  async head(path) {
    const res = await this.request("HEAD", path, { method: "HEAD" });
    if (res.status === 404 || res.status === 410) return null;
    if (!res.ok) throw await failure("HEAD", path, res);
    return meta(res);
  }

  // create creates a stream (or a fork, with forkFrom). Returns 201 or 200
  // (an identical stream existed).
  async create(path, o = {}) {
    const headers = {};
    if (o.contentType) headers["Content-Type"] = o.contentType;
    if (o.ttl !== undefined && o.ttl !== "") headers["Stream-TTL"] = String(o.ttl);
    if (o.expiresAt) headers["Stream-Expires-At"] = o.expiresAt;
    if (o.closed) headers["Stream-Closed"] = "true";
    if (o.forkFrom) {
      headers["Stream-Forked-From"] = o.forkFrom;
      if (o.forkOffset) headers["Stream-Fork-Offset"] = o.forkOffset;
      if (o.forkSubOffset) headers["Stream-Fork-Sub-Offset"] = String(o.forkSubOffset);
    }
    const res = await this.request("PUT", path, { method: "PUT", headers });
    if (res.status !== 201 && res.status !== 200) throw await failure("PUT", path, res);
    return res.status;
  }

  // append sends one body. producer ({id, epoch, seq}) adds the idempotent
  // producer headers. Returns the stream's next offset.
  async append(path, contentType, body, producer) {
    const headers = { "Content-Type": contentType };
    if (producer) {
      headers["Producer-Id"] = producer.id;
      headers["Producer-Epoch"] = String(producer.epoch);
      headers["Producer-Seq"] = String(producer.seq);
    }
    const res = await this.request("POST", path, { method: "POST", headers, body });
    if (!res.ok) throw await failure("POST", path, res);
    return res.headers.get("Stream-Next-Offset") || "";
  }

  // close closes the stream (no more appends; readers see EOF).
  async close(path) {
    const res = await this.request("POST", path, { method: "POST", headers: { "Stream-Closed": "true" } });
    if (!res.ok) throw await failure("close", path, res);
  }

  async remove(path) {
    const res = await this.request("DELETE", path, { method: "DELETE" });
    if (!res.ok) throw await failure("DELETE", path, res);
  }
}

// Batch is what a follower delivers: the data between offset and
// nextOffset, as bytes (Uint8Array) or, for SSE text, a string.
//
// A follower reads from its offset until the server says it is up to date
// (catch-up), then live: SSE, or long-poll when the mode says so or when
// SSE does not work in "auto" mode: an error answer, a response that is not
// an event stream, a connection that brings no event within firstEventMs
// (servers send a control event at once; a proxy that buffers the event
// stream holds it back), or two connections in a row that end without one.
// An SSE data event is delivered only with the control event that follows
// it (which carries its next offset), so a connection lost between the two
// re-reads the data instead of delivering it twice. After a network error
// or a 5xx the follower waits (250 ms, doubling up to 3 s) and resumes from
// the offset it has reached.
export class Follower {
  // handlers: onBatch(batch), onState(state, detail), onEnd(reason)
  // where state is "catching-up" | "live-sse" | "live-long-poll" |
  // "reconnecting", and reason is "closed" | "gone" | "stopped" | an Error.
  constructor(client, path, { mode = "auto", offset = "-1", firstEventMs = 5000, onBatch, onState, onEnd }) {
    this.firstEventMs = firstEventMs;
    this.client = client;
    this.path = path;
    this.mode = mode;
    this.offset = offset;
    this.cursor = "";
    this.onBatch = onBatch || (() => {});
    this.onState = onState || (() => {});
    this.onEnd = onEnd || (() => {});
    this.abort = new AbortController();
    this.sseBroken = mode === "long-poll";
    this.emptySSE = 0;
    this.running = false;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.loop().then(
      (reason) => this.onEnd(reason),
      (err) => this.onEnd(err.name === "AbortError" ? "stopped" : err),
    );
  }

  stop() {
    this.running = false;
    this.abort.abort();
  }

  async loop() {
    let upToDate = false;
    let failures = 0;
    this.onState("catching-up");
    while (this.running) {
      let end;
      try {
        if (!upToDate) {
          end = await this.catchUp();
          upToDate = end === "up-to-date";
          if (upToDate) end = undefined;
        } else if (!this.sseBroken) {
          end = await this.sse();
        } else {
          end = await this.longPoll();
        }
        failures = 0;
      } catch (err) {
        if (err.name === "AbortError" || !this.running) return "stopped";
        if (!(err instanceof HttpError) || (err.status !== 0 && err.status < 500 && err.status !== 429)) throw err;
        failures++;
        this.onState("reconnecting", err.message);
        await sleep(Math.min(250 * 2 ** (failures - 1), 3000) * (0.8 + 0.4 * Math.random()), this.abort.signal);
        if (upToDate) this.onState("catching-up");
        upToDate = false;
        continue;
      }
      if (end) return end;
    }
    return "stopped";
  }

  // get performs a read and maps the end-of-stream answers.
  async get(query, signal = this.abort.signal) {
    const res = await this.client.request("GET", this.path, { signal }, query);
    if (res.status === 404 || res.status === 410) {
      await res.body?.cancel();
      return { gone: true };
    }
    if (!res.ok && res.status !== 204) throw await failure("GET", this.path, res);
    return { res };
  }

  // deliver hands out the data read from offset and moves the follower to
  // nextOffset. Data from any other offset than the follower's is stale
  // and dropped.
  deliver(offset, nextOffset, data) {
    if (offset !== this.offset) return;
    if (nextOffset) this.offset = nextOffset;
    if ((typeof data === "string" ? data.length : data.byteLength) > 0) {
      this.onBatch({ offset, nextOffset, data });
    }
  }

  // catchUp reads one chunk; returns "up-to-date", "closed", "gone" or
  // undefined (more to read).
  async catchUp() {
    const { gone, res } = await this.get({ offset: this.offset });
    if (gone) return "gone";
    const data = new Uint8Array(await res.arrayBuffer());
    const m = meta(res);
    this.deliver(this.offset, m.nextOffset, data);
    if (m.closed) return "closed";
    if ((res.headers.get("Stream-Up-To-Date") || "").toLowerCase() === "true") return "up-to-date";
    if (!m.nextOffset) throw new HttpError("GET", this.path, res.status, "no Stream-Next-Offset");
    return undefined;
  }

  async longPoll() {
    this.onState("live-long-poll", this.sseBroken && this.mode !== "long-poll" ? "SSE unavailable" : "");
    const q = { offset: this.offset, live: "long-poll" };
    if (this.cursor) q.cursor = this.cursor;
    const { gone, res } = await this.get(q);
    if (gone) return "gone";
    const data = new Uint8Array(await res.arrayBuffer());
    const m = meta(res);
    this.cursor = res.headers.get("Stream-Cursor") || this.cursor;
    this.deliver(this.offset, m.nextOffset, data);
    if (m.closed) return "closed";
    return undefined;
  }

  // sse reads one SSE connection to its end. A connection that brings no
  // event within firstEventMs (a server sends its first control event at
  // once) is taken as a proxy that buffers the event stream.
  async sse() {
    const q = { offset: this.offset, live: "sse" };
    if (this.cursor) q.cursor = this.cursor;
    const conn = new AbortController();
    const stop = () => conn.abort();
    this.abort.signal.addEventListener("abort", stop);
    const seen = { events: 0, silent: false };
    const timer = setTimeout(() => {
      if (seen.events === 0) {
        seen.silent = true;
        conn.abort();
      }
    }, this.firstEventMs);
    try {
      const end = await this.sseConnection(q, conn.signal, seen);
      if (seen.silent) return this.sseFailed(`no event within ${this.firstEventMs} ms`);
      return end;
    } catch (err) {
      if (seen.silent && !this.abort.signal.aborted) return this.sseFailed(`no event within ${this.firstEventMs} ms`);
      throw err;
    } finally {
      clearTimeout(timer);
      this.abort.signal.removeEventListener("abort", stop);
    }
  }

  async sseConnection(q, signal, seen) {
    const { gone, res } = await this.get(q, signal);
    if (gone) return "gone";
    const type = (res.headers.get("Content-Type") || "").split(";")[0].trim();
    if (res.status !== 200 || type !== "text/event-stream" || !res.body) {
      await res.body?.cancel();
      return this.sseFailed("not an event stream");
    }
    this.onState("live-sse");
    const base64 = (res.headers.get("Stream-SSE-Data-Encoding") || "").toLowerCase() === "base64";
    let pending = null;
    for await (const ev of sseEvents(res.body, signal)) {
      seen.events++;
      if (ev.event === "data") {
        pending = base64 ? decodeBase64(ev.data) : ev.data;
      } else if (ev.event === "control") {
        let c;
        try {
          c = JSON.parse(ev.data);
        } catch {
          throw new HttpError("GET", this.path, 200, "SSE control event is not JSON");
        }
        if (c.streamCursor) this.cursor = c.streamCursor;
        this.deliver(this.offset, c.streamNextOffset || "", pending ?? "");
        pending = null;
        if (c.streamClosed) return "closed";
      }
    }
    if (seen.events === 0 && ++this.emptySSE >= 2) return this.sseFailed("connections ended without events");
    if (seen.events > 0) this.emptySSE = 0;
    return undefined;
  }

  sseFailed(why) {
    if (this.mode === "sse") throw new HttpError("GET", this.path, 0, `SSE: ${why}`);
    this.sseBroken = true;
    this.sseWhy = why;
    return undefined;
  }
}

// sseEvents parses a text/event-stream body into {event, data} objects.
export async function* sseEvents(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  const onAbort = () => reader.cancel().catch(() => {});
  signal.addEventListener("abort", onAbort);
  let buf = "";
  let event = "";
  let data = [];
  try {
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (err) {
        if (signal.aborted) throw err;
        throw new HttpError("GET", "", 0, "connection lost");
      }
      if (!chunk.done) buf += chunk.value;
      for (;;) {
        const m = /\r\n|\r|\n/.exec(buf);
        // A CR at the very end may be the first half of a CRLF, unless the
        // stream has ended.
        if (!m || (m[0] === "\r" && m.index === buf.length - 1 && !chunk.done)) break;
        const line = buf.slice(0, m.index);
        buf = buf.slice(m.index + m[0].length);
        if (line === "") {
          if (data.length > 0 || event) yield { event: event || "message", data: data.join("\n") };
          event = "";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const i = line.indexOf(":");
        const field = i < 0 ? line : line.slice(0, i);
        let value = i < 0 ? "" : line.slice(i + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
      }
      if (chunk.done) return;
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

function decodeBase64(text) {
  const s = atob(text.replace(/[\r\n]/g, ""));
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        reject(new DOMException("stopped", "AbortError"));
      },
      { once: true },
    );
  });
}

// registryChange interprets one message of a __registry__ stream. It reads
// the reference dev server's lifecycle events ({"type":"created"|"deleted",
// "path", "contentType", "timestamp"}, which durable serve writes) and the
// state-protocol change events of newer reference servers ({"type":"stream",
// "key", "value":{"path","contentType","createdAt"}, "headers":{"operation"}}).
// It returns {op: "add"|"remove", path, info} or null for anything else.
// prefixPath (e.g. "/v1/stream/") is removed from paths that carry it.
export function registryChange(ev, prefixPath) {
  if (!ev || typeof ev !== "object") return null;
  const clean = (p) => {
    if (typeof p !== "string" || p === "") return "";
    if (prefixPath && p.startsWith(prefixPath)) p = p.slice(prefixPath.length);
    return p.replace(/^\/+/, "");
  };
  if (ev.type === "created" || ev.type === "deleted") {
    const path = clean(ev.path);
    if (!path) return null;
    if (ev.type === "deleted") return { op: "remove", path };
    return { op: "add", path, info: streamInfo(ev.contentType, ev.timestamp, ev) };
  }
  const op = ev.headers && ev.headers.operation;
  if (ev.type === "stream" && typeof op === "string") {
    const v = ev.value && typeof ev.value === "object" ? ev.value : {};
    const path = clean(ev.key ?? v.path);
    if (!path) return null;
    if (op === "delete") return { op: "remove", path };
    if (op !== "insert" && op !== "update" && op !== "upsert") return null;
    return { op: "add", path, info: streamInfo(v.contentType, v.createdAt, {}) };
  }
  return null;
}

// streamInfo is what the page keeps about a listed stream, from the fields
// of a registry event (fork holds forkedFrom, forkOffset, forkSubOffset).
function streamInfo(contentType, createdAt, fork) {
  return {
    contentType: typeof contentType === "string" ? contentType : "",
    createdAt: typeof createdAt === "number" ? createdAt : null,
    forkedFrom: typeof fork.forkedFrom === "string" ? fork.forkedFrom : "",
    forkOffset: typeof fork.forkOffset === "string" ? fork.forkOffset : "",
    forkSubOffset: typeof fork.forkSubOffset === "number" ? fork.forkSubOffset : 0,
  };
}
