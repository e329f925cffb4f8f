// Drives the TypeScript reference client (@durable-streams/client) against a
// Durable Streams server (in CI: `durable serve`) for the interop tests in
// interop/. Run from a directory whose node_modules holds the package.
//
//   node ts-client.mjs <stream-base-url> <run-id>
//
// Streams are named <run-id>-<name> under <stream-base-url>. Before starting
// this script the Go test creates (and fills, and closes) the go-* streams,
// and creates the live-* streams with their catch-up part. The script:
//
//   - writes: creates ts-json, ts-bytes, ts-text and ts-prod, appends to them
//     (awaited one by one, then a burst the client batches into one POST, and
//     through an IdempotentProducer), and closes them;
//   - reads the closed go-* streams to EOF (catch-up, live: false);
//   - opens live sessions (long-poll and SSE) on the live-* streams and, once
//     each session has its first response, prints {"event":"ready",...} so
//     the Go test appends more data and then closes the stream; the session
//     reads until it observes the stream closed (EOF).
//
// stdout carries JSON lines only: "ready" events, then one final "report"
// with everything written and read (bytes as base64, JSON messages as
// JSON.stringify of each item), the steps done, the step that failed (if
// any) and the last HTTP exchanges this client made. Exit status 0 when every
// step passed, 1 otherwise.
import {
  DurableStream,
  IdempotentProducer,
  stream,
} from "@durable-streams/client"

const [base, runID] = process.argv.slice(2)
if (!base || !runID) {
  process.stderr.write("usage: node ts-client.mjs <stream-base-url> <run-id>\n")
  process.exit(2)
}
const STEP_TIMEOUT_MS = Number(process.env.TS_STEP_TIMEOUT_MS ?? "20000")
const MAX_EXCHANGES = 60
const EXCERPT = 300

const urlOf = (name) => new URL(`${runID}-${name}`, base.endsWith("/") ? base : base + "/").toString()
const b64 = (u8) => Buffer.from(u8).toString("base64")
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + "\n")

// ---- recording fetch: the last MAX_EXCHANGES requests and responses ----
const exchanges = []
let exchangeSeq = 0
const KEY_HEADERS = [
  "content-type", "stream-next-offset", "stream-up-to-date", "stream-closed",
  "stream-cursor", "stream-sse-data-encoding", "producer-id", "producer-epoch",
  "producer-seq", "producer-expected-seq", "producer-received-seq", "etag",
  "content-encoding", "location",
]
function pickHeaders(h) {
  const out = {}
  if (!h) return out
  const headers = h instanceof Headers ? h : new Headers(h)
  for (const k of KEY_HEADERS) {
    const v = headers.get(k)
    if (v !== null) out[k] = v
  }
  return out
}
function excerptOf(body) {
  if (body === undefined || body === null) return undefined
  let u8
  if (typeof body === "string") u8 = Buffer.from(body, "utf8")
  else if (body instanceof Uint8Array) u8 = body
  else if (body instanceof ArrayBuffer) u8 = new Uint8Array(body)
  else return `<${Object.prototype.toString.call(body)}>`
  const s = Buffer.from(u8.subarray(0, EXCERPT)).toString("utf8")
  return JSON.stringify(s).slice(1, -1) + (u8.length > EXCERPT ? `…(${u8.length} bytes)` : "")
}
async function recordingFetch(input, init = {}) {
  const req = input instanceof Request ? input : undefined
  const ex = {
    n: ++exchangeSeq,
    method: init.method ?? req?.method ?? "GET",
    url: String(req ? req.url : input),
    reqHeaders: pickHeaders(init.headers ?? req?.headers),
    reqBody: excerptOf(init.body),
  }
  exchanges.push(ex)
  if (exchanges.length > MAX_EXCHANGES) exchanges.shift()
  const started = Date.now()
  try {
    const res = await fetch(input, init)
    ex.status = res.status
    ex.respHeaders = pickHeaders(res.headers)
    ex.ms = Date.now() - started
    const ct = res.headers.get("content-type") ?? ""
    if (!ct.includes("text/event-stream") && res.body) {
      // Fill the excerpt when the body arrives; never block the caller.
      res.clone().arrayBuffer().then(
        (buf) => { ex.respBody = excerptOf(new Uint8Array(buf)) },
        () => {},
      )
    } else if (ct.includes("text/event-stream")) {
      ex.respBody = "<event-stream>"
    }
    return res
  } catch (err) {
    ex.error = String(err?.message ?? err)
    throw err
  }
}

// ---- steps ----
const report = { event: "report", ok: true, steps: [], written: {}, read: {}, live: {} }
async function step(name, fn) {
  const signal = AbortSignal.timeout(STEP_TIMEOUT_MS)
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`step timed out after ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS)
  })
  try {
    const r = await Promise.race([fn(signal), timeout])
    report.steps.push(name)
    return r
  } catch (err) {
    const e = new Error(`${name}: ${err?.stack ?? err}`)
    e.step = name
    throw e
  } finally {
    clearTimeout(timer)
  }
}
const handle = (name, contentType) =>
  new DurableStream({ url: urlOf(name), contentType, fetch: recordingFetch, warnOnHttp: false })

// Messages of the JSON streams this client writes: compact JSON text, each
// one message (the client wraps every append in an array, so the array
// message below stays one message).
const tsJSON = [
  `{"from":"ts","n":1}`,
  `{"s":"héllo ✓ \\"quoted\\" \\n newline","u":"\\u0000"}`,
  `[1,2,3]`,
  `"a string"`,
  `null`,
  `{"nested":{"a":[true,false,null],"x":-0.5}}`,
]
const tsJSONBurst = [`{"burst":1}`, `{"burst":2}`, `{"burst":3}`, `{"burst":4}`]
const tsJSONFinal = `{"final":true}`

function allBytes() {
  const u8 = new Uint8Array(256)
  for (let i = 0; i < 256; i++) u8[i] = i
  return u8
}
function prng(seed, n) {
  const u8 = new Uint8Array(n)
  let x = seed >>> 0
  for (let i = 0; i < n; i++) {
    x = (x * 1664525 + 1013904223) >>> 0
    u8[i] = x >>> 24
  }
  return u8
}
const tsBytes = [allBytes(), prng(7, 3000), new TextEncoder().encode("data: not an event\r\n\n")]
const tsBytesBurst = [prng(11, 17), prng(12, 1), prng(13, 64)]
const tsBytesFinal = new Uint8Array([0, 255, 0])
const tsText = ["line one\n", "data: looks like sse\n\nevent: control\n", "ünïcödé ✓ end"]

async function writeStreams() {
  // JSON: create, appends one by one, a burst, close with a final message.
  const j = await step("create ts-json", () => DurableStream.create({
    url: urlOf("ts-json"), contentType: "application/json", fetch: recordingFetch, warnOnHttp: false,
  }))
  await step("append ts-json (one by one)", async () => {
    for (const m of tsJSON) await j.append(m)
  })
  await step("append ts-json (burst)", () => Promise.all(tsJSONBurst.map((m) => j.append(m))))
  const jc = await step("close ts-json with final message", () => j.close({ body: tsJSONFinal }))
  await step("head ts-json after close", async (signal) => {
    const h = await j.head({ signal })
    if (!h.exists || !h.streamClosed || h.offset !== jc.finalOffset || !h.contentType?.startsWith("application/json")) {
      throw new Error(`head = ${JSON.stringify(h)}, want an existing closed application/json stream at ${jc.finalOffset}`)
    }
  })
  report.written["ts-json"] = {
    messages: [...tsJSON, ...tsJSONBurst, tsJSONFinal], closed: true, finalOffset: jc.finalOffset,
  }

  // Bytes: create, appends, burst, close with a final message.
  const b = await step("create ts-bytes", () => DurableStream.create({
    url: urlOf("ts-bytes"), contentType: "application/octet-stream", fetch: recordingFetch, warnOnHttp: false,
  }))
  await step("append ts-bytes (one by one)", async () => {
    for (const c of tsBytes) await b.append(c)
  })
  await step("append ts-bytes (burst)", () => Promise.all(tsBytesBurst.map((c) => b.append(c))))
  const bc = await step("close ts-bytes with final bytes", () => b.close({ body: tsBytesFinal }))
  report.written["ts-bytes"] = {
    bytes: b64(Buffer.concat([...tsBytes, ...tsBytesBurst, tsBytesFinal])), closed: true, finalOffset: bc.finalOffset,
  }

  // Text: created with initial data, appends, plain close.
  const t = await step("create ts-text with initial data", () => DurableStream.create({
    url: urlOf("ts-text"), contentType: "text/plain", body: tsText[0], fetch: recordingFetch, warnOnHttp: false,
  }))
  await step("append ts-text", async () => {
    for (const s of tsText.slice(1)) await t.append(s)
  })
  const tc = await step("close ts-text", () => t.close())
  await step("close ts-text again (idempotent)", () => t.close())
  report.written["ts-text"] = { bytes: b64(Buffer.from(tsText.join(""), "utf8")), closed: true, finalOffset: tc.finalOffset }

  // Idempotent producer: batched appends, flush, close with a final message.
  const p = await step("create ts-prod", () => DurableStream.create({
    url: urlOf("ts-prod"), contentType: "application/json", fetch: recordingFetch, warnOnHttp: false,
  }))
  const prodMsgs = []
  for (let i = 0; i < 25; i++) prodMsgs.push(JSON.stringify({ producer: "ts", i }))
  const errors = []
  const producer = new IdempotentProducer(p, `ts-producer-${runID}`, {
    epoch: 0, lingerMs: 2, maxInFlight: 3, fetch: recordingFetch, onError: (e) => errors.push(String(e)),
  })
  await step("producer append + flush ts-prod", async () => {
    for (const m of prodMsgs.slice(0, 20)) producer.append(m)
    await producer.flush()
    if (errors.length) throw new Error(`producer errors: ${errors.join("; ")}`)
  })
  const pc = await step("producer close ts-prod with final message", async () => {
    for (const m of prodMsgs.slice(20)) producer.append(m)
    const r = await producer.close(JSON.stringify({ producer: "ts", final: true }))
    if (errors.length) throw new Error(`producer errors: ${errors.join("; ")}`)
    return r
  })
  report.written["ts-prod"] = {
    messages: [...prodMsgs, JSON.stringify({ producer: "ts", final: true })],
    closed: true, finalOffset: pc.finalOffset, producerEpoch: producer.epoch, producerNextSeq: producer.nextSeq,
  }
}

// Catch-up reads of the streams the Go side wrote and closed.
async function readGoStreams() {
  for (const [name, kind] of [["go-json", "json"], ["go-bytes", "bytes"], ["go-text", "bytes"], ["go-producer", "json"], ["go-writer", "json"], ["go-writer-bytes", "bytes"]]) {
    await step(`catch-up read ${name}`, async (signal) => {
      const res = await stream({ url: urlOf(name), offset: "-1", live: false, fetch: recordingFetch, signal, warnOnHttp: false })
      const out = { contentType: res.contentType }
      if (kind === "json") {
        const items = await res.json()
        out.messages = items.map((v) => JSON.stringify(v))
      } else {
        out.bytes = b64(await res.body())
      }
      out.offset = res.offset
      out.upToDate = res.upToDate
      out.streamClosed = res.streamClosed
      report.read[name] = out
    })
  }
}

// One live session: reads until the stream is closed, reporting the data.
function liveSession(name, kind, live) {
  return step(`live ${live} read ${name}`, async (signal) => {
    const requests = { catchup: 0, longPoll: 0, sse: 0 }
    const countingFetch = (input, init) => {
      const u = new URL(String(input instanceof Request ? input.url : input))
      const mode = u.searchParams.get("live")
      if (mode === "long-poll") requests.longPoll++
      else if (mode === "sse") requests.sse++
      else requests.catchup++
      return recordingFetch(input, init)
    }
    const res = await stream({
      url: urlOf(name), offset: "-1", live, fetch: countingFetch, signal, warnOnHttp: false,
      // A single short SSE connection must not switch the session to long-poll.
      sseResilience: { maxShortConnections: 1000, logWarnings: false },
    })
    const out = { contentType: res.contentType, batches: 0 }
    const parts = []
    let done
    const eof = new Promise((resolve, reject) => { done = { resolve, reject } })
    const unsubscribe = kind === "json"
      ? res.subscribeJson((batch) => {
        out.batches++
        for (const v of batch.items) parts.push(JSON.stringify(v))
        if (batch.streamClosed) { out.offset = batch.offset; done.resolve() }
      })
      : res.subscribeBytes((chunk) => {
        out.batches++
        parts.push(chunk.data)
        if (chunk.streamClosed) { out.offset = chunk.offset; done.resolve() }
      })
    // The session's closed promise can settle while its last batch is still
    // being delivered to the subscriber, so give that batch a moment.
    const lateReject = (err) => setTimeout(() => done.reject(err), 500)
    res.closed.then(
      () => lateReject(new Error("session ended before the stream was observed closed")),
      (err) => lateReject(err),
    )
    emit({ event: "ready", stream: name, live })
    try {
      await eof
    } finally {
      unsubscribe()
      res.cancel()
    }
    out.streamClosed = true
    out.requests = requests
    if (kind === "json") out.messages = parts
    else out.bytes = b64(Buffer.concat(parts))
    report.live[`${name}`] = out
  })
}

async function main() {
  const phases = (process.env.TS_PHASES ?? "write,read,live").split(",")
  if (phases.includes("write")) await writeStreams()
  if (phases.includes("read")) await readGoStreams()
  if (phases.includes("live")) {
    // Sessions run concurrently; each one waits for the Go side to append.
    const results = await Promise.allSettled([
      liveSession("live-lp-json", "json", "long-poll"),
      liveSession("live-sse-json", "json", "sse"),
      liveSession("live-lp-bytes", "bytes", "long-poll"),
      liveSession("live-sse-bytes", "bytes", "sse"),
      liveSession("live-sse-text", "bytes", "sse"),
    ])
    const failed = results.find((r) => r.status === "rejected")
    if (failed) throw failed.reason
  }
}

try {
  await main()
} catch (err) {
  report.ok = false
  report.failedStep = err?.step ?? "(outside any step)"
  report.error = String(err?.message ?? err)
}
// Give pending response-excerpt reads a moment to land.
await new Promise((r) => setTimeout(r, 50))
report.exchanges = exchanges
emit(report)
process.exit(report.ok ? 0 : 1)
