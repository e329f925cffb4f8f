// Package testserver is a complete Durable Streams server for tests and
// local development, in the shape of net/http/httptest:
//
//	srv := testserver.New()
//	defer srv.Close()
//	url := srv.StreamURL("orders") // http://127.0.0.1:PORT/v1/stream/orders
//
// It implements the Durable Streams protocol (PROTOCOL.md in
// github.com/durable-streams/durable-streams): create (content type,
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
// validation and append (protocol section 5.2), and by default also orders
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
//
// # Fault control over HTTP
//
// With WithFaultControl (durable serve --faults) the same is reachable over
// HTTP, for tests in other processes and other languages. The endpoints
// live at /__ds/testserver/ and, equally, under the stream prefix
// (/v1/stream/__ds/testserver/ by default); they are not counted by
// Requests, and without WithFaultControl they answer 404 like any unknown
// stream. Every answer carries Cache-Control: no-store.
//
//	POST   /__ds/testserver/faults     add faults: the body is one fault object or a JSON array of them → 204
//	DELETE /__ds/testserver/faults     remove every fault → 204
//	GET    /__ds/testserver/requests   request counts (query: path, method; both optional) → 200, JSON
//	DELETE /__ds/testserver/requests   reset every count to zero → 204
//
// A fault object has these fields, all optional; they mean what the fields
// of Fault mean:
//
//	path         string   stream path, in any form of "Paths" below ("orders", "/v1/stream/orders", a full URL); absent: any stream
//	method       string   HTTP method, any case ("post"); absent: any method
//	status       number   answer with this status (100-999) instead of handling the request
//	retryAfter   duration with status: send Retry-After (whole seconds, rounded up)
//	delay        duration wait this long before handling (ends early if the client or the server goes away)
//	drop         bool     close the connection without an answer
//	truncate     bool     send the headers and part of the body, then close the connection
//	afterApply   bool     with status, drop or truncate: run the real handler first (the write happens), then fail the answer
//	count        number   apply to the next count matching requests, then remove the fault; 0 or absent: until cleared
//	probability  number   in (0, 1): the chance that a matching request is hit; 0 or absent: every one
//
// A duration is a Go duration string ("250ms", "2s") or a number of
// milliseconds (250). Faults are checked in the order they were added and
// the first that matches applies. A body that is not a fault object or an
// array of them, a status outside 100-999, or a duration that does not
// parse is answered 400 with a plain-text reason, and no fault of that
// body is added.
//
// GET requests answers
//
//	{"count": 3, "requests": [{"path": "orders", "method": "POST", "count": 2}, {"path": "orders", "method": "PUT", "count": 1}]}
//
// where count is the total over the rows, and each row is one stream path
// (relative to the prefix) and method with its count, in no particular
// order; the query parameters path (in any form a fault's path takes) and
// method (any case) keep only the matching rows. Any other method or endpoint under
// /__ds/testserver/ is answered 404.
//
// For example, against durable serve --faults:
//
//	curl -X POST localhost:4437/__ds/testserver/faults \
//	  -d '{"path":"orders","method":"POST","status":503,"retryAfter":"1s","count":2}'
//	curl 'localhost:4437/__ds/testserver/requests?path=orders&method=POST'
//	curl -X DELETE localhost:4437/__ds/testserver/faults
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
