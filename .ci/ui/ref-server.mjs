// Starts the Node reference server (@durable-streams/server) with the
// lifecycle hooks that keep its __registry__ stream, as its development
// server does, on a free loopback port; prints its base URL as the first
// line of stdout and stops on SIGTERM/SIGINT. Used by ui.test.mjs; run from
// a directory whose node_modules holds the package.
import { DurableStreamTestServer, createRegistryHooks } from "@durable-streams/server"

const server = new DurableStreamTestServer({ host: "127.0.0.1", port: 0, longPollTimeout: 5000 })
const url = await server.start()
const hooks = createRegistryHooks(server.store, url)
server.options.onStreamCreated = hooks.onStreamCreated
server.options.onStreamDeleted = hooks.onStreamDeleted
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
