// Starts the Node reference server (@durable-streams/server) on a free
// loopback port, prints its base URL as the first line of stdout, and stops
// on SIGTERM/SIGINT. WEBHOOKS=1 turns on its webhook subscriptions. Used by
// the interop tests and (with REGISTRY=1: the lifecycle hooks that keep its
// __registry__ stream, as its development server has them) by the UI tests;
// run from a directory whose node_modules holds the package (NODE_PATH is not
// honoured by ESM imports).
import { DurableStreamTestServer, createRegistryHooks } from "@durable-streams/server"

const longPollTimeout = Number(process.env.LONG_POLL_TIMEOUT_MS ?? "2000")
const webhooks = process.env.WEBHOOKS === "1"
const server = new DurableStreamTestServer({ host: "127.0.0.1", port: 0, longPollTimeout, webhooks })
const url = await server.start()
if (process.env.REGISTRY === "1") {
  const hooks = createRegistryHooks(server.store, url)
  server.options.onStreamCreated = hooks.onStreamCreated
  server.options.onStreamDeleted = hooks.onStreamDeleted
}
process.stdout.write(url + "\n")

let stopping = false
async function stop() {
  if (stopping) return
  stopping = true
  await server.stop()
  process.exit(0)
}
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
