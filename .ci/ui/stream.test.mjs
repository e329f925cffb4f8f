// Tests of the Test UI's protocol module (cmd/durable/ui/static/stream.js)
// in Node, which has the same fetch and web streams as the browser: the SSE
// parser on randomly split input, the registry event formats, the server
// URL field, and the follower against `durable serve` behind a proxy that
// cuts, rewrites or buffers its SSE responses. Run by .ci/steps/60-ui.sh
// with the page's files in ./static/:
//
//   DURABLE_UI_BIN=path/to/durable node --test stream.test.mjs

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { spawn } from "node:child_process";
import { Client, Follower, normalizeBase, registryChange, sseEvents } from "./static/stream.js";

const BIN = process.env.DURABLE_UI_BIN;
if (!BIN) throw new Error("DURABLE_UI_BIN must be set");

// ------------------------------------------------------------ SSE parser

// rng is a small seeded generator (xorshift32) so a failure can be replayed.
function rng(seed) {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

function body(chunks) {
  return new ReadableStream({
    start(c) {
      for (const ch of chunks) c.enqueue(ch);
      c.close();
    },
  });
}

async function parse(chunks) {
  const out = [];
  for await (const ev of sseEvents(body(chunks), new AbortController().signal)) out.push(ev);
  return out;
}

// randomStream builds an event stream and the events it holds.
function randomStream(r) {
  const eols = ["\n", "\r\n", "\r"];
  const alphabet = ["a", "b", " ", ":", "{", '"', "é", "✓", "\u2028", "0"];
  // A CR followed by an LF is one line end: after a CR the next line end
  // is not a lone LF (that would read as CRLF, not as an empty line).
  let last = "";
  const eol = () => {
    let e = eols[r(3)];
    if (last === "\r" && e === "\n") e = "\r\n";
    return (last = e);
  };
  let text = "";
  const events = [];
  for (let i = 0, n = 1 + r(6); i < n; i++) {
    if (r(3) === 0) text += ": comment" + eol();
    const event = ["data", "control", ""][r(3)];
    if (event) text += "event: " + event + eol();
    const lines = [];
    for (let j = 0, m = 1 + r(3); j < m; j++) {
      let v = "";
      for (let k = 0, len = r(12); k < len; k++) v += alphabet[r(alphabet.length)];
      lines.push(v);
      text += "data: " + v + eol();
    }
    text += eol();
    events.push({ event: event || "message", data: lines.join("\n") });
  }
  return { text, events };
}

test("SSE parser: the same events however the bytes are split (500 random streams)", async () => {
  for (let seed = 1; seed <= 500; seed++) {
    const r = rng(seed);
    const { text, events } = randomStream(r);
    const bytes = new TextEncoder().encode(text);
    const chunks = [];
    for (let i = 0; i < bytes.length; ) {
      const n = 1 + r(8);
      chunks.push(bytes.subarray(i, i + n));
      i += n;
    }
    assert.deepEqual(await parse(chunks), events, `seed ${seed}: ${JSON.stringify(text)}`);
  }
});

test("SSE parser: field forms", async () => {
  const text = "event:data\ndata:x\ndata\ndata:  two spaces\n\nretry: 5\nid: 1\n\n:only a comment\n\nevent: control\ndata: {}\n";
  // An event without data is not dispatched; nor is one the stream cuts off.
  assert.deepEqual(await parse([new TextEncoder().encode(text)]), [{ event: "data", data: "x\n\n two spaces" }]);
});

// ------------------------------------------------------------ registry and URL

test("registry events: the dev-server format and the state-protocol format", () => {
  const cases = [
    [{ type: "created", path: "orders", contentType: "application/json", timestamp: 5 }, { op: "add", path: "orders", ct: "application/json", at: 5 }],
    [{ type: "created", path: "/v1/stream/a/b", contentType: "text/plain" }, { op: "add", path: "a/b", ct: "text/plain", at: null }],
    [{ type: "deleted", path: "orders", timestamp: 6 }, { op: "remove", path: "orders" }],
    [{ type: "stream", key: "x", value: { path: "x", contentType: "text/plain", createdAt: 7 }, headers: { operation: "insert" } }, { op: "add", path: "x", ct: "text/plain", at: 7 }],
    [{ type: "stream", key: "x", headers: { operation: "delete" } }, { op: "remove", path: "x" }],
    [{ type: "stream", key: "x", headers: { operation: "bogus" } }, null],
    [{ type: "created" }, null],
    [{ type: "renamed", path: "x" }, null],
    ["created", null],
    [null, null],
  ];
  for (const [ev, want] of cases) {
    const got = registryChange(ev, "/v1/stream/");
    const brief = got && { op: got.op, path: got.path, ...(got.info ? { ct: got.info.contentType, at: got.info.createdAt } : {}) };
    assert.deepEqual(brief, want, JSON.stringify(ev));
  }
  const fork = registryChange({ type: "created", path: "f", contentType: "application/json", timestamp: 1, forkedFrom: "o", forkOffset: "X", forkSubOffset: 2 });
  assert.deepEqual([fork.info.forkedFrom, fork.info.forkOffset, fork.info.forkSubOffset], ["o", "X", 2]);
});

test("server field: normalised, and credentials refused", () => {
  assert.equal(normalizeBase("http://127.0.0.1:4437"), "http://127.0.0.1:4437/v1/stream/");
  assert.equal(normalizeBase(" http://h:1/streams "), "http://h:1/streams/");
  assert.equal(normalizeBase("https://h/x/?token=abc#frag"), "https://h/x/");
  assert.equal(normalizeBase("http://h", "/p/"), "http://h/p/");
  assert.throws(() => normalizeBase("http://u:p@h/"), /credentials/);
  assert.throws(() => normalizeBase("http://u@h/"), /credentials/);
  assert.throws(() => normalizeBase("ftp://h/"), /http/);
  assert.throws(() => normalizeBase("not a url"), /not a URL/);
});

// ------------------------------------------------------------ follower

let serve;
let upstream = ""; // durable serve's base URL
let proxy;
let proxyURL = "";
let proxyMode = "pass"; // pass | cut-after-data | not-sse | buffer
let sseRequests = 0;

before(async () => {
  serve = spawn(BIN, ["serve", "--addr", "127.0.0.1:0", "--long-poll-timeout", "2s"], { stdio: ["ignore", "pipe", "ignore"] });
  upstream = await new Promise((resolve, reject) => {
    let out = "";
    serve.stdout.on("data", (d) => {
      out += d;
      if (out.includes("\n")) resolve(out.split("\n")[0].trim());
    });
    serve.on("exit", (code) => reject(new Error("durable serve exited " + code)));
  });
  proxy = http.createServer((req, res) => {
    const isSSE = /[?&]live=sse/.test(req.url);
    if (isSSE) sseRequests++;
    const mode = isSSE ? proxyMode : "pass";
    if (mode === "not-sse") {
      res.writeHead(200, { "Content-Type": "text/plain" });
      res.end("this proxy does not do event streams");
      return;
    }
    const up = http.request(upstream + req.url, { method: req.method, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      if (mode === "buffer") {
        const parts = [];
        ur.on("data", (d) => parts.push(d));
        ur.on("end", () => res.end(Buffer.concat(parts)));
        return;
      }
      if (mode === "cut-after-data") {
        // Forward until the end of the first data event, then drop the
        // connection before its control event.
        let seen = "";
        let sent = 0;
        ur.on("data", (d) => {
          seen += d.toString("latin1");
          const i = seen.indexOf("event: data");
          const end = i < 0 ? -1 : seen.indexOf("\n\n", i);
          if (end < 0) {
            // Up to the start of a data event that is not complete yet.
            const upTo = i < 0 ? seen.length : i;
            res.write(Buffer.from(seen.slice(sent, upTo), "latin1"));
            sent = upTo;
            return;
          }
          proxyMode = "pass"; // once
          res.write(Buffer.from(seen.slice(sent, end + 2), "latin1"), () => res.destroy());
          ur.destroy();
        });
        return;
      }
      ur.pipe(res);
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  await new Promise((r) => proxy.listen(0, "127.0.0.1", r));
  proxyURL = `http://127.0.0.1:${proxy.address().port}`;
});

after(async () => {
  proxy.closeAllConnections();
  await new Promise((r) => proxy.close(r));
  serve.kill("SIGTERM");
  await new Promise((r) => serve.on("exit", r));
});

// follow starts a follower on the proxy and records what it reports.
function follow(path, opts = {}) {
  const rec = { batches: [], states: [], end: null };
  const client = new Client(proxyURL + "/v1/stream/");
  const f = new Follower(client, path, {
    ...opts,
    onBatch: (b) => rec.batches.push(b),
    onState: (s, d) => rec.states.push(d ? `${s}: ${d}` : s),
    onEnd: (r) => (rec.end = r),
  });
  f.start();
  rec.follower = f;
  return rec;
}

async function until(what, cond, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function req(method, path, body, headers = {}) {
  const res = await fetch(`${upstream}/v1/stream/${path}`, { method, body, headers });
  assert.ok(res.ok, `${method} ${path}: ${res.status}`);
  return res;
}

const values = (rec) => rec.batches.flatMap((b) => JSON.parse(typeof b.data === "string" ? b.data : new TextDecoder().decode(b.data)));

test("follower: a connection lost between an SSE data event and its control event delivers nothing twice", async () => {
  await req("PUT", "cut", JSON.stringify({ n: 1 }), { "Content-Type": "application/json" });
  proxyMode = "cut-after-data"; // for the next SSE connection
  const rec = follow("cut");
  await until("live", () => rec.states.includes("live-sse"));
  const before = sseRequests;
  await req("POST", "cut", JSON.stringify({ n: 2 }), { "Content-Type": "application/json" });
  await until("the second message", () => values(rec).length >= 2);
  assert.equal(proxyMode, "pass", "the proxy cut the connection after the data event");
  await until("a new SSE connection", () => sseRequests > before && rec.states.at(-1) === "live-sse");
  await req("POST", "cut", JSON.stringify({ n: 3 }), { "Content-Type": "application/json" });
  await until("the third message", () => values(rec).length >= 3);
  rec.follower.stop();
  assert.deepEqual(values(rec), [{ n: 1 }, { n: 2 }, { n: 3 }]);
});

test("follower: SSE that is not an event stream falls back to long-poll (auto) or keeps retrying (SSE only)", async () => {
  proxyMode = "not-sse";
  await req("PUT", "nosse", "", { "Content-Type": "application/json" });
  const rec = follow("nosse");
  await until("long-poll", () => rec.states.includes("live-long-poll: SSE unavailable"));
  await req("POST", "nosse", JSON.stringify({ n: 1 }), { "Content-Type": "application/json" });
  await until("the message", () => values(rec).length === 1);
  rec.follower.stop();

  const strict = follow("nosse", { mode: "sse" });
  await until("retries", () => strict.states.filter((s) => s.startsWith("reconnecting")).length >= 2);
  strict.follower.stop();
  assert.ok(!strict.states.some((s) => s.startsWith("live-long-poll")));
  proxyMode = "pass";
});

test("follower: a proxy that buffers the event stream is noticed and long-poll takes over", async () => {
  proxyMode = "buffer";
  await req("PUT", "buffered", "", { "Content-Type": "application/json" });
  const rec = follow("buffered", { firstEventMs: 300 });
  await until("long-poll", () => rec.states.some((s) => s.startsWith("live-long-poll: SSE unavailable")));
  await req("POST", "buffered", JSON.stringify({ n: 1 }), { "Content-Type": "application/json" });
  await until("the message", () => values(rec).length === 1, 5000);
  rec.follower.stop();
  proxyMode = "pass";
});

test("follower: binary data arrives exactly through SSE base64, then EOF on close", async () => {
  const all = new Uint8Array(256).map((_, i) => i);
  await req("PUT", "bin", "", { "Content-Type": "application/octet-stream" });
  const rec = follow("bin");
  await until("live", () => rec.states.includes("live-sse"));
  await req("POST", "bin", all, { "Content-Type": "application/octet-stream" });
  await req("POST", "bin", "", { "Stream-Closed": "true" });
  await until("the end", () => rec.end !== null);
  assert.equal(rec.end, "closed");
  const got = rec.batches.flatMap((b) => Array.from(b.data));
  assert.deepEqual(got, Array.from(all));
});

test("follower: a deleted stream ends the follow as gone", async () => {
  for (const mode of ["auto", "long-poll"]) {
    await req("PUT", "doomed-" + mode, "", { "Content-Type": "text/plain" });
    const rec = follow("doomed-" + mode, { mode });
    await until("live", () => rec.states.some((s) => s.startsWith("live")));
    await req("DELETE", "doomed-" + mode);
    await until("the end", () => rec.end !== null);
    assert.equal(rec.end, "gone", mode);
  }
});
