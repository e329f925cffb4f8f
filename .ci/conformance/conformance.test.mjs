// Runs the public Durable Streams server conformance suite against the
// server named by DURABLE_BASE_URL (started by .ci/steps/10-conformance.sh),
// with the subscription cases when DURABLE_SUBSCRIPTIONS=1.
import { runConformanceTests } from "@durable-streams/server-conformance-tests"

const baseUrl = process.env.DURABLE_BASE_URL
if (!baseUrl) throw new Error("DURABLE_BASE_URL is not set")

runConformanceTests({
  baseUrl,
  longPollTimeoutMs: Number(process.env.DURABLE_LONG_POLL_MS ?? 2000),
  subscriptions: process.env.DURABLE_SUBSCRIPTIONS === "1",
})
