// Package testserver is a complete Durable Streams server for tests and
// local development, in the shape of net/http/httptest:
//
//	srv := testserver.New()
//	defer srv.Close()
//	url := srv.StreamURL("orders") // http://127.0.0.1:PORT/v1/stream/orders
//
// It implements the stream protocol of PROTOCOL.md: create (content type,
// Stream-TTL, Stream-Expires-At, Stream-Closed, initial body, idempotent
// 200 / 409 including closure), append (content-type match, JSON
// validation and one-level array flattening, Stream-Seq, atomic append and
// close, idempotent producers), close, delete (soft delete while forks
// exist), HEAD, catch-up reads with a chunk limit and ETags, long-poll and
// SSE live reads, forks with sub-offsets, TTL / expiry against an
// injectable clock, and the recommended security, caching and CORS headers.
// The `durable serve` command runs it standalone.
//
// # Offsets
//
// Offsets look like "0000000000000000_0000000000000123": fixed width, so
// lexicographic order is stream order. They are positions in the stream's
// log; every append adds at least one byte, so offsets only grow. They are
// never "-1" or "now".
//
// # Reads
//
// A catch-up or long-poll response carries at most the chunk limit of
// stream bytes (at least one whole message for JSON streams) and is
// written without copying the stored data. SSE sends one data event per
// chunk, each followed by a control event; binary content types travel as
// base64, text ones as "data:" lines split at every CR, LF or CRLF, so in
// SSE mode a text stream's CR and CRLF line ends arrive as LF (SSE
// framing cannot carry them); catch-up and long-poll reads are byte-exact.
//
// # Pipelined producers
//
// A producer's appends sent one after another on different connections can
// reach the server out of order. The server serializes each producer's
// validation and append (PROTOCOL.md §5.2), and by default also orders
// them: a request whose Producer-Seq is ahead of the producer's state waits
// for the earlier request if the server is handling it, and for up to
// DefaultOrderGrace for one that has not arrived yet, before it is answered
// with a sequence gap (409). WithProducerOrdering(false, 0) validates each
// request the moment it reaches the stream, like a strictly first-come
// server.
//
// # Stream-Seq scope
//
// Stream-Seq is enforced per stream: a value must be byte-wise greater than
// the last one accepted on that stream, whoever sent it.
//
// # Storage and durability
//
// Streams live in memory unless WithDataDir is given. With a data
// directory every stream has a metadata file and an append-only log; a
// log record carries the appended data together with the state that
// changes with it (Stream-Seq, producer epoch and sequence, closure), so an
// append and its producer state are committed atomically. The log is
// written and fsynced (and a new stream's directory entry too) before the
// response is sent: an acknowledged write survives a killed process and a
// machine crash. WithoutSync skips the fsync (acknowledged writes then
// survive a killed process only). A record torn by a crash is detected by
// its checksum and dropped on restart; it was never acknowledged.
// Last-access times for sliding TTLs are not persisted: a restart starts
// every TTL window afresh. No file stays open between requests. If a disk
// write fails the request gets 500; the running server may then hold data
// the disk lacks (a restart serves what the disk has).
//
// # Faults and accounting
//
// InjectFault makes matching requests fail with a status (and
// Retry-After), a delay, a dropped connection or a truncated body, for the
// next Count requests or with a probability; AfterApply fails the
// response after the real handler ran, so the write did happen. Requests
// counts the requests that reached the server per stream path and method.
// With WithFaultControl the same is reachable over HTTP at
// /__ds/testserver/ (see serveControl) for tests in other processes.
//
// # Subscriptions
//
// WithSubscriptions serves PROTOCOL.md §6–7 under {prefix}__ds/ (routes and
// error codes in subscriptions_http.go, the model in subscriptions.go):
// subscriptions over a glob pattern and explicit streams with one acked
// offset per stream, pull-wake wakes written to a wake stream and claimed
// by one worker at a time, and webhook wakes POSTed with an Ed25519
// Webhook-Signature whose keys are at {prefix}__ds/jwks.json. A wake is
// fenced by its generation, wake id and HMAC-signed token; its lease
// (lease_ttl_ms) is renewed by acks and callbacks without done, and when it
// runs out pending work issues the next generation. Failed webhook
// deliveries are retried with the same wake id after 1 s, 2 s, 4 s ... up
// to 60 s, ±20% (status "failed" meanwhile), up to WithWebhookRetry's
// budget; after that the wake is dropped until new data, an added stream or
// a re-confirming PUT. Webhook URLs must be https to a public host; with
// WithLoopbackWebhooks receivers on localhost / loopback addresses are
// accepted too (tests, development), never private or link-local ones,
// and the delivery dialer re-checks every address it connects to. Lease
// expiry, retries, token expiry and signature timestamps use the server's
// clock (WithClock); RunTimers runs what is due at once, so tests move a
// fake clock instead of sleeping. With WithDataDir every change is stored
// (atomically, fsynced) before it is answered: subscriptions, acked
// offsets, generations, leases, retry schedules and the signing keys
// survive a restart, and RotateSigningKey's old key stays published for ten
// minutes. Wake events the server writes do not wake subscriptions.
//
// # Registry
//
// WithRegistry(true) (`durable serve` has it on) keeps a JSON stream at
// RegistryPath with one event per stream created or deleted, in the event
// format of the reference development server, so tools such as the Test UI
// of `durable serve` can list the streams.
//
// # TLS
//
// WithTLS serves HTTPS, with a generated self-signed certificate unless
// one is given; Certificate and Client return what a client needs to
// trust it, and the tls.Config can require client certificates.
//
// # Paths
//
// Fault paths, Requests paths and Stream-Forked-From accept a stream path
// relative to the prefix ("orders"), with a leading slash, with the prefix
// ("/v1/stream/orders") or as a full URL.
//
// # Input limits
//
// Stream paths are at most 1024 bytes, with no empty, "." or ".."
// segments, no encoded slashes or backslashes and no control characters;
// the first segment "__ds" is reserved (404 unless WithSubscriptions).
// Offsets are at most 256 bytes.
// Bodies over the configured limit get 413. Bad input gets a 4xx with a
// short text/plain message and changes nothing.
package testserver
