// Starts the Node reference server (@durable-streams/server) on a free
// loopback port, prints its base URL as the first line of stdout, and stops
// on SIGTERM/SIGINT. Used by the interop tests; run from a directory whose
// node_modules holds the package (NODE_PATH is not honoured by ESM imports).
// WEBHOOKS=1 turns on webhook subscriptions (pull-wake ones are always on).
import { DurableStreamTestServer } from "@durable-streams/server"

const longPollTimeout = Number(process.env.LONG_POLL_TIMEOUT_MS ?? "2000")
const webhooks = process.env.WEBHOOKS === "1"
const server = new DurableStreamTestServer({ host: "127.0.0.1", port: 0, longPollTimeout, webhooks })
const url = await server.start()
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
