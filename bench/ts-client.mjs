// Throughput of the TypeScript reference client (@durable-streams/client)
// against a running `durable serve`, for the BENCHMARKS.md rows:
//
//   node ts-client.mjs write <base-url> <messages>   IdempotentProducer, 100-byte JSON messages
//   node ts-client.mjs read  <base-url> <stream>     catch-up of an existing JSON stream
//
// <base-url> is the server's stream prefix, e.g. http://127.0.0.1:4437/v1/stream/.
// Prints one line: "<mode> <messages> <seconds> <msgs/s>". bench/run.sh
// installs @durable-streams/client@0.2.7 into a temporary directory and
// copies this script there, so that the import below resolves.
import { DurableStream, IdempotentProducer, stream } from "@durable-streams/client"

const [mode, base, arg] = process.argv.slice(2)
if (!mode || !base || !arg) {
  console.error("usage: node ts-client.mjs write|read <base-url> <messages|stream>")
  process.exit(2)
}

// Same 100-byte message as the Go writer benchmark (benchMsg).
function msg(id) {
  const head = `{"id":${id},"payload":""}`
  return { id, payload: "x".repeat(100 - head.length) }
}

if (mode === "write") {
  const n = Number(arg)
  const url = `${base}ts-write-${process.pid}-${Date.now()}`
  const handle = await DurableStream.create({ url, contentType: "application/json" })
  let failed = null
  const producer = new IdempotentProducer(handle, `ts-bench-${process.pid}`, {
    onError: (err) => { failed ??= err },
  })
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; i++) {
    producer.append(JSON.stringify(msg(1000000 + (i % 1000))))
    // Let the producer's batches go out (append is fire-and-forget; a
    // tight loop would otherwise buffer everything before sending).
    if (i % 1000 === 999) await new Promise(setImmediate)
  }
  await producer.flush()
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  await producer.close()
  if (failed) throw failed
  console.log(`write ${n} ${s.toFixed(3)} ${(n / s).toFixed(0)}`)
} else if (mode === "read") {
  // @durable-streams/client 0.2.7 ends a live: false read after its first
  // response even when that response is not up to date (a 1,000,000
  // message stream is ~43 responses of 1 MiB), so the catch-up follows
  // the offsets itself, one stream() call per response.
  const url = `${base}${arg}`
  const t0 = process.hrtime.bigint()
  let off = "-1"
  let n = 0
  let sum = 0
  for (;;) {
    const res = await stream({ url, offset: off, live: false })
    for (const v of await res.json()) {
      n++
      sum += v.id
    }
    if (res.upToDate || res.offset === off) break
    off = res.offset
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  console.log(`read ${n} ${s.toFixed(3)} ${(n / s).toFixed(0)}`)
} else {
  console.error(`unknown mode ${mode}`)
  process.exit(2)
}
