// Browser tests of the Test UI that `durable serve` serves at /ui/ (issue
// 19), in headless Chromium driven by playwright-core. Run by
// .ci/steps/60-ui.sh from a directory whose node_modules holds
// playwright-core and @durable-streams/server:
//
//   DURABLE_UI_BIN=path/to/durable DURABLE_UI_ARTIFACTS=dir node --test ui.test.mjs
//
// One `durable serve --data-dir D --faults` child serves the page (and
// .ci/interop/node-server.mjs runs the reference server); the steps
// run in order and share the page, as a person using it would. Every console
// message the page logs is collected: the page's own errors and warnings and
// uncaught exceptions fail the run, and so does any failed network load the
// browser logs unless a step expected it (a stream the test deleted answers
// 404; a server the test stopped refuses connections).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BIN = process.env.DURABLE_UI_BIN;
const ARTIFACTS = process.env.DURABLE_UI_ARTIFACTS;
const CHROMIUM = process.env.DURABLE_UI_CHROMIUM || "/usr/bin/chromium";
if (!BIN || !ARTIFACTS) throw new Error("DURABLE_UI_BIN and DURABLE_UI_ARTIFACTS must be set");
mkdirSync(ARTIFACTS, { recursive: true });

const dataDir = mkdtempSync(join(tmpdir(), "durable-ui-data-"));
let serve; // the durable serve child
let base = ""; // http://127.0.0.1:PORT
let browser;
let page;
const consoleLog = []; // every console message and page error
const expected = []; // failed loads a step expects: {url, text, from, to} (indexes in consoleLog)

// expectFailedLoads declares that, from now until the returned function is
// called (or the end), the browser may log failed loads of URLs matching
// url with a message matching text.
function expectFailedLoads(url, text) {
  const w = { url, text, from: consoleLog.length, to: Infinity };
  expected.push(w);
  return () => (w.to = consoleLog.length);
}

// ------------------------------------------------------------ processes

// startProcess runs argv and resolves with the child and its first stdout
// line (the base URL both servers print).
function startProcess(argv, opts = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], ...opts });
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`${argv.join(" ")} printed no URL: ${err}`)), 15000);
    child.stdout.on("data", (d) => {
      out += d;
      const i = out.indexOf("\n");
      if (i >= 0) {
        clearTimeout(timer);
        resolve({ child, url: out.slice(0, i).trim() });
      }
    });
    child.stderr.on("data", (d) => (err += d));
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${argv.join(" ")} exited ${code}: ${err}`));
    });
  });
}

function stopProcess(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.removeAllListeners("exit");
    child.on("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

async function startServe(addr) {
  const { child, url } = await startProcess([
    BIN, "serve", "--addr", addr, "--data-dir", dataDir, "--faults", "--long-poll-timeout", "5s", "--subscriptions",
  ]);
  serve = child;
  base = url;
}

// cli runs a durable command against the server and returns its stdout.
function cli(...args) {
  return new Promise((resolve, reject) => {
    execFile(BIN, args, { env: { ...process.env, DURABLE_SERVER: base }, timeout: 15000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`durable ${args.join(" ")}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

// posts counts the POST requests the server has received for a stream.
async function posts(path) {
  const res = await fetch(`${base}/__ds/testserver/requests?path=${encodeURIComponent(path)}&method=POST`);
  assert.equal(res.status, 200);
  return (await res.json()).count;
}

async function head(path) {
  const res = await fetch(`${base}/v1/stream/${path}`, { method: "HEAD" });
  return { status: res.status, type: res.headers.get("content-type"), closed: res.headers.get("stream-closed") };
}

// ------------------------------------------------------------ page helpers

const item = (path) => page.locator(`#stream-list li[data-path="${path}"]`);
const messages = () => page.locator("#messages .msg");

async function shot(name) {
  await page.screenshot({ path: join(ARTIFACTS, name + ".png"), fullPage: true });
}

// jsonMessages returns the JSON values shown in the message view.
async function jsonMessages() {
  return page.$$eval("#messages .msg pre.json", (pres) => pres.map((p) => JSON.parse(p.textContent)));
}

async function waitForCount(n, timeout) {
  await page.waitForFunction((n) => document.querySelectorAll("#messages .msg").length === n, n, { timeout });
}

async function createInPage(path, contentType, extra = async () => {}) {
  await page.fill('#create-form input[name="path"]', path);
  await page.selectOption('#create-form select[name="contentType"]', contentType);
  await extra();
  await page.click('#create-form button[type="submit"]');
  await item(path)
    .waitFor({ timeout: 5000 })
    .catch(async (err) => assert.fail(`${err.message}; the page says: ${await page.textContent("#create-msg")}`));
  await page.waitForFunction((p) => document.getElementById("view-path").textContent === p, path);
  await page.waitForFunction(() => document.getElementById("view-live").dataset.state?.startsWith("live"));
}

async function typeAndSend(text) {
  await page.fill("#append-body", text);
  await page.press("#append-body", "Enter");
}

// ------------------------------------------------------------ setup

before(async () => {
  await startServe("127.0.0.1:0");
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.on("console", (m) => consoleLog.push({ type: m.type(), text: m.text(), url: m.location().url || "" }));
  page.on("pageerror", (e) => consoleLog.push({ type: "pageerror", text: e.message, url: "" }));
});

after(async () => {
  await browser?.close();
  if (serve) await stopProcess(serve);
  rmSync(dataDir, { recursive: true, force: true });
});

// ------------------------------------------------------------ steps

test("the page loads, connects and lists streams from the registry", async () => {
  await cli("create", "from-cli", "--content-type", "text/plain");
  await page.goto(base + "/ui/");
  await page.waitForFunction(() => /connected · live/.test(document.getElementById("conn").textContent));
  await item("from-cli").waitFor({ timeout: 5000 });
  assert.equal(await page.inputValue("#server-url"), base + "/v1/stream/");
  assert.equal(await page.locator('#stream-list li[data-path="__registry__"]').count(), 0, "the registry is not listed");
});

test("a JSON stream created in the page", async () => {
  await createInPage("orders", "application/json");
  assert.deepEqual(await head("orders"), { status: 200, type: "application/json", closed: null });
  assert.equal(await page.textContent("#view-state"), "open");
  assert.equal(await page.textContent("#m-type"), "application/json");
});

let afterThree = ""; // the offset after the third message

test("messages appended with the CLI appear in the page within a second", async () => {
  for (let n = 1; n <= 3; n++) {
    afterThree = (await cli("append", "orders", JSON.stringify({ n, note: n === 2 ? "second" : undefined }))).trim();
    await waitForCount(n, 1000);
  }
  assert.deepEqual(await jsonMessages(), [{ n: 1 }, { n: 2, note: "second" }, { n: 3 }]);
  const pretty = await page.locator("#messages .msg pre.json").nth(1).textContent();
  assert.equal(pretty, '{\n  "n": 2,\n  "note": "second"\n}', "JSON is pretty-printed");
  const tail = (await cli("head", "orders")).match(/\d{16}_\d{16}/)[0];
  assert.equal(await page.textContent("#m-tail"), tail, "the tail offset follows the stream");
  await shot("json-stream");
});

test("the server restarted on its data dir: the page resumes without a duplicate", async () => {
  const addr = base.replace("http://", "");
  const restarted = expectFailedLoads(new RegExp("^" + base), /ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_CONNECTION_RESET/);
  await stopProcess(serve);
  await page.waitForFunction(() => document.getElementById("view-live").dataset.state === "reconnecting", null, { timeout: 10000 });
  await shot("reconnecting");
  await startServe(addr);
  await page.waitForFunction(() => document.getElementById("view-live").dataset.state?.startsWith("live"), null, { timeout: 10000 });
  await cli("append", "orders", '{"n":4}');
  await waitForCount(4, 5000);
  assert.deepEqual(await jsonMessages(), [{ n: 1 }, { n: 2, note: "second" }, { n: 3 }, { n: 4 }]);
  await page.waitForFunction(() => /connected · live/.test(document.getElementById("conn").textContent), null, { timeout: 10000 });
  assert.equal(await item("orders").count(), 1, "the registry lists the stream once");
  restarted();
});

test("invalid JSON typed in the page shows an error and nothing is sent", async () => {
  const before = await posts("orders");
  await typeAndSend('{"n": 5');
  await page.waitForFunction(() => document.getElementById("append-msg").dataset.kind === "error");
  assert.match(await page.textContent("#append-msg"), /Invalid JSON, nothing sent/);
  assert.equal(await page.getAttribute("#append-body", "aria-invalid"), "true");
  await shot("invalid-json");
  assert.equal(await posts("orders"), before, "no POST reached the server");
  assert.equal(await messages().count(), 4);

  // The same field with valid JSON sends exactly one request.
  await typeAndSend('{"n": 5}');
  await waitForCount(5, 5000);
  assert.equal(await posts("orders"), before + 1);
  assert.equal(await page.inputValue("#append-body"), "", "the field is cleared after a send");
});

test("appends through the idempotent producer", async () => {
  await page.check("#producer");
  assert.match(await page.textContent("#producer-info"), /Producer-Id ui-[0-9a-f]+ · epoch 0 · next seq 0/);
  await typeAndSend('[{"n": 6}, {"n": 7}]');
  await waitForCount(7, 5000);
  // The messages may show before the POST's answer is handled.
  await page.waitForFunction(() => /next seq 1$/.test(document.getElementById("producer-info").textContent));
  await page.uncheck("#producer");
  assert.deepEqual((await jsonMessages()).slice(-2), [{ n: 6 }, { n: 7 }], "an array appends its elements");
});

test("follow by long-poll only", async () => {
  await page.selectOption("#follow-mode", "long-poll");
  await page.waitForFunction(() => document.getElementById("view-live").dataset.state === "live-long-poll", null, { timeout: 10000 });
  await waitForCount(7, 5000); // re-read from the start, nothing twice
  await cli("append", "orders", '{"n":8}');
  await waitForCount(8, 1000);
  await page.selectOption("#follow-mode", "auto");
  await page.waitForFunction(() => document.getElementById("view-live").dataset.state === "live-sse", null, { timeout: 10000 });
  await waitForCount(8, 5000);
});

test("a text stream is continuous and a binary stream is hex", async () => {
  await cli("append", "from-cli", "hello ");
  await item("from-cli").click();
  await page.waitForFunction(() => document.getElementById("view-live").dataset.state?.startsWith("live"));
  await cli("append", "from-cli", "world\nsecond line");
  await page.waitForFunction(() => document.querySelector("#messages .text-body")?.textContent === "hello world\nsecond line", null, { timeout: 1000 });
  assert.equal(await page.locator("#messages .text-body .chunk").count(), 2);

  await createInPage("blob", "application/octet-stream");
  await typeAndSend("Hi\u0001");
  await page.waitForFunction(() => /48 69 01/.test(document.querySelector("#messages .hexdump")?.textContent || ""), null, { timeout: 5000 });
  assert.match(await page.textContent("#messages .hexdump"), /^00000000  48 69 01\s+\|Hi\.\|$/);
});

test("a fork created in the page shows its source", async () => {
  await item("orders").click();
  await waitForCount(8, 5000);
  const offset = afterThree;
  assert.match(offset, /^\d{16}_\d{16}$/);
  await page.click("#fork");
  assert.equal(await page.inputValue('#create-form input[name="forkFrom"]'), "orders");
  await page.fill('#create-form input[name="path"]', "orders-fork");
  await page.fill('#create-form input[name="forkOffset"]', offset);
  await page.click('#create-form button[type="submit"]');
  await item("orders-fork").waitFor({ timeout: 5000 });
  await waitForCount(3, 5000);
  assert.deepEqual(await jsonMessages(), [{ n: 1 }, { n: 2, note: "second" }, { n: 3 }]);
  await page.waitForFunction(() => document.getElementById("m-fork").textContent.startsWith("orders at "));
  assert.equal(await page.textContent("#m-fork"), `orders at ${offset}`);
});

test("a closed stream shows as closed", async () => {
  await item("orders").click();
  await waitForCount(8, 5000);
  await page.click("#close-stream");
  await page.locator("#messages .end-closed").waitFor({ timeout: 5000 });
  assert.equal(await page.textContent("#view-state"), "closed");
  assert.equal(await page.textContent("#m-closed"), "yes");
  assert.equal(await page.isHidden("#append-form"), true, "no appends to a closed stream");
  assert.equal((await head("orders")).closed, "true");
  await shot("closed");

  // Closed by someone else while the page follows it.
  await item("from-cli").click();
  await page.waitForFunction(() => document.getElementById("view-live").dataset.state?.startsWith("live"));
  await cli("close", "from-cli");
  await page.locator("#messages .end-closed").waitFor({ timeout: 1000 });
  assert.equal(await page.textContent("#view-state"), "closed");
});

test("a deleted stream leaves the list", async () => {
  expectFailedLoads(new RegExp(`^${base}/v1/stream/(blob|orders-fork)\\b`), /status of 404/);
  await item("blob").click();
  await page.waitForFunction(() => document.getElementById("view-live").dataset.state?.startsWith("live"));
  await page.click("#delete-stream");
  await page.click("#delete-confirm");
  await item("blob").waitFor({ state: "detached", timeout: 5000 });
  assert.equal((await head("blob")).status, 404);
  await page.waitForFunction(() => document.getElementById("view-state").textContent === "deleted");

  await cli("delete", "orders-fork");
  await item("orders-fork").waitFor({ state: "detached", timeout: 5000 });
  assert.deepEqual(await page.$$eval("#stream-list li", (lis) => lis.map((li) => li.dataset.path)), ["from-cli", "orders"]);
  await shot("deleted");
});

test("keyboard: / filters, arrows move through the list", async () => {
  await page.keyboard.press("Escape");
  await page.locator("body").click({ position: { x: 5, y: 5 } });
  await page.keyboard.press("/");
  assert.equal(await page.evaluate(() => document.activeElement.id), "filter");
  await page.keyboard.type("ord");
  assert.deepEqual(await page.$$eval("#stream-list li", (lis) => lis.map((li) => li.dataset.path)), ["orders"]);
  await page.keyboard.press("Escape");
  await page.focus("#stream-list");
  await page.keyboard.press("Home");
  await page.waitForFunction(() => document.getElementById("view-path").textContent === "from-cli");
  await page.keyboard.press("ArrowDown");
  await page.waitForFunction(() => document.getElementById("view-path").textContent === "orders");
  assert.equal(await page.getAttribute('#stream-list li[data-path="orders"]', "aria-selected"), "true");
});

test("readable at phone width", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await item("orders").click();
  await waitForCount(8, 5000);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `page is ${overflow}px wider than the phone`);
  await shot("phone");
  await page.setViewportSize({ width: 1280, height: 860 });
});

test("create options: TTL, expiry, created closed; the registry itself is readable", async () => {
  await createInPage("with-ttl", "text/plain", () => page.fill('#create-form input[name="ttl"]', "3600"));
  assert.equal(await page.textContent("#m-expiry"), "TTL 3600 s (renewed by each read or write)");
  await createInPage("with-expiry", "application/json", () => page.fill('#create-form input[name="expiresAt"]', "2099-01-01T00:00:00Z"));
  assert.equal(await page.textContent("#m-expiry"), "expires at 2099-01-01T00:00:00Z");

  await page.fill('#create-form input[name="path"]', "sealed");
  await page.check('#create-form input[name="closed"]');
  await page.click('#create-form button[type="submit"]');
  await page.locator("#messages .end-closed").waitFor({ timeout: 5000 });
  assert.equal(await page.textContent("#view-state"), "closed");
  assert.equal((await head("sealed")).closed, "true");
  assert.equal(await page.isChecked('#create-form input[name="closed"]'), false, "the form is reset after a create");

  await page.click("#open-registry");
  await page.waitForFunction(() => document.getElementById("view-path").textContent === "__registry__");
  await page.waitForFunction(() => document.querySelectorAll("#messages .msg").length >= 10);
  const events = await jsonMessages();
  assert.deepEqual(events[0], { type: "created", path: "__registry__", contentType: "application/json", timestamp: events[0].timestamp });
  assert.ok(events.some((e) => e.type === "deleted" && e.path === "blob"));
  assert.equal(await page.isHidden("#append-form"), true, "the page does not write to the registry");
});

test("the page stores no secrets", async () => {
  const stored = await page.evaluate(() => Object.fromEntries(Object.entries(localStorage)));
  assert.deepEqual(stored, {}, "nothing stored for the server that served the page");
  assert.deepEqual(await page.evaluate(() => Object.keys(sessionStorage)), []);
  await page.fill("#server-url", "http://user:secret@127.0.0.1:1/");
  await page.click('#server-form button[type="submit"]');
  assert.match(await page.textContent("#conn"), /credentials in the URL are not supported/);
  assert.deepEqual(await page.evaluate(() => Object.fromEntries(Object.entries(localStorage))), {});
});

test("works against the Node reference server with its registry hooks", async () => {
  const { child, url } = await startProcess([process.execPath, "node-server.mjs"], {
    env: { ...process.env, REGISTRY: "1", LONG_POLL_TIMEOUT_MS: "5000" },
  });
  try {
    // Its registry appears with its first event: until then a 404.
    expectFailedLoads(new RegExp(`^${url}/v1/stream/__registry__`), /status of 404/);
    await page.fill("#server-url", url);
    await page.click('#server-form button[type="submit"]');
    assert.equal(await page.inputValue("#server-url"), url + "/v1/stream/");
    await page.waitForFunction(() => /no registry/.test(document.getElementById("conn").textContent), null, { timeout: 5000 });
    await createInPage("ref-stream", "application/json");
    await page.waitForFunction(() => /connected · live/.test(document.getElementById("conn").textContent), null, { timeout: 5000 });
    await typeAndSend('{"hello":"reference"}');
    await waitForCount(1, 5000);
    const res = await fetch(url + "/v1/stream/__registry__?offset=-1");
    const events = await res.json();
    assert.equal(events[events.length - 1].headers.operation, "insert", "the reference registry uses state-protocol events");
    await shot("reference-server");
    expectFailedLoads(new RegExp(`^${url}/v1/stream/ref-stream`), /status of 404/);
    await page.click("#delete-stream");
    await page.click("#delete-confirm");
    await item("ref-stream").waitFor({ state: "detached", timeout: 5000 });
  } finally {
    await page.fill("#server-url", base);
    await page.click('#server-form button[type="submit"]');
    await stopProcess(child);
  }
  assert.deepEqual(await page.evaluate(() => Object.fromEntries(Object.entries(localStorage))), {}, "back on its own server, nothing stored");
});

// subscriptionFlow drives a pull-wake subscription on the server at url
// (PROTOCOL.md §6–7) and checks what the page's subscriptions view shows:
// the linked stream pending with its acked offset and tail, the wake's
// generation, then (after a worker claims and acks) the acked offset at the
// tail. listed: the server lists its subscriptions (no id to type).
async function subscriptionFlow(url, listed) {
  const api = (path, method, body, headers = {}) =>
    fetch(`${url}/v1/stream/${path}`, {
      method,
      headers: { "Content-Type": "application/json", ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  assert.equal((await api("ui-wake", "PUT")).status, 201);
  assert.equal((await api("jobs/a", "PUT")).status, 201);
  const sub = { type: "pull-wake", pattern: "jobs/*", wake_stream: "ui-wake", lease_ttl_ms: 30000 };
  assert.equal((await api("__ds/subscriptions/sub-ui", "PUT", sub)).status, 201);
  assert.ok((await api("jobs/a", "POST", { job: 1 })).ok);

  const card = page.locator('#subs .sub[data-id="sub-ui"]');
  const row = card.locator("tr", { hasText: "jobs/a" });
  if (!(await page.locator("#subs").evaluate((d) => d.open))) await page.click("#subs summary");
  if (!listed) {
    await page.fill("#sub-id", "sub-ui");
    await page.press("#sub-id", "Enter");
  }
  await row.waitFor({ timeout: 10000 });
  await page.waitForFunction(() => /Last wake\s*generation 1 · jobs\/a/.test(document.querySelector('#subs .sub[data-id="sub-ui"]')?.textContent || ""), null, { timeout: 10000 });
  const cells = () => row.locator("td").allTextContents();
  let [, link, acked, tail, pending] = await cells();
  assert.equal(link, "glob");
  assert.equal(pending, "pending");
  assert.ok(acked < tail, `acked ${acked} before the tail ${tail}`);
  await shot("subscriptions-" + (listed ? "durable" : "reference"));

  if (listed) assert.match(await card.textContent(), /Lease\s*wake issued, not claimed yet/);
  const claim = await (await api("__ds/subscriptions/sub-ui/claim", "POST", { worker: "ui-test" })).json();
  assert.equal(claim.generation, 1);
  if (listed) {
    await page.waitForFunction(() => /Lease\s*held by ui-test until 20/.test(document.querySelector('#subs .sub[data-id="sub-ui"]')?.textContent || ""), null, { timeout: 10000 });
    await shot("subscriptions-durable-claimed");
  }
  const target = claim.streams.find((st) => st.path === "jobs/a").tail_offset;
  const ack = { wake_id: claim.wake_id, generation: claim.generation, acks: [{ stream: "jobs/a", offset: target }], done: true };
  assert.ok((await api("__ds/subscriptions/sub-ui/ack", "POST", ack, { Authorization: "Bearer " + claim.token })).ok);
  await page.waitForFunction(
    (t) => {
      const tds = [...(document.querySelector('#subs .sub[data-id="sub-ui"] tr:nth-child(2)')?.querySelectorAll("td") || [])];
      return tds.length === 5 && tds[2].textContent === t && tds[4].textContent === "";
    },
    target,
    { timeout: 10000 },
  );
  [, , acked, tail, pending] = await cells();
  assert.equal(acked, tail);
  if (listed) await page.waitForFunction(() => /Lease\s*none \(idle\)/.test(document.querySelector('#subs .sub[data-id="sub-ui"]')?.textContent || ""), null, { timeout: 10000 });
  const text = await card.textContent();
  assert.ok(!text.includes(claim.token), "the page never shows a token");
}

test("subscriptions view against the Node reference server", async () => {
  const { child, url } = await startProcess([process.execPath, "node-server.mjs"], {
    env: { ...process.env, LONG_POLL_TIMEOUT_MS: "5000" },
  });
  try {
    // It has no registry and does not list subscriptions: two 404s.
    expectFailedLoads(new RegExp(`^${url}/v1/stream/(__registry__|__ds/subscriptions)(\\?|$)`), /status of 404/);
    await page.fill("#server-url", url);
    await page.click('#server-form button[type="submit"]');
    await subscriptionFlow(url, false);
  } finally {
    await page.click("#subs summary");
    await page.fill("#server-url", base);
    await page.click('#server-form button[type="submit"]');
    await stopProcess(child);
  }
});

test("subscriptions view against durable serve --subscriptions (listed, with leases)", async () => {
  await subscriptionFlow(base, true);
  await page.click("#subs summary");
});

test("no console errors", () => {
  const unexpected = consoleLog.filter((m, i) => {
    if (m.type !== "error" && m.type !== "warning" && m.type !== "pageerror") return false;
    if (m.type === "error" && m.text.startsWith("Failed to load resource")) {
      return !expected.some((w) => i >= w.from && i < w.to && w.url.test(m.url) && w.text.test(m.text));
    }
    return true;
  });
  assert.deepEqual(unexpected, [], "console messages");
  const failedLoads = consoleLog.filter((m) => m.text.startsWith("Failed to load resource")).length;
  console.log(`# console: ${consoleLog.length} messages, ${failedLoads} expected failed loads, 0 errors`);
});
