// Package chaos is the chaos run of the durable SDK: real processes killed
// with SIGKILL at random moments, and a check of the whole history
// afterwards, in the manner of Jepsen. It holds the record formats and the
// history checker shared by the supervisor (TestChaos, behind the build tag
// "chaos") and the worker program (internal/testsupport/chaos/worker).
//
//	go test -race -tags chaos -run Chaos -count=1 ./internal/testsupport/chaos/...
//
// # The run
//
// The supervisor builds cmd/durable and the worker once (with -race when
// the supervisor runs under -race, so a data race in the SDK or the server
// under faults is caught too: a race report in any process's stderr is a
// violation; CHAOS_RACE=0 builds them without, for speed), picks a free
// port up front so that a restarted server keeps its URL, and starts
//
//   - `durable serve --data-dir DIR --addr 127.0.0.1:PORT` (fsync before
//     every acknowledgement);
//   - three writers: each appends events {"w": id, "e": epoch, "s": seq}
//     with a durable.Writer (idempotent producer, epoch persisted in an
//     offsetstore.File so a restarted writer fences its predecessor), in
//     bursts of 1–8 events (WriteAsync; one burst in four ends with a
//     WriteSync), 50 a second on average (CHAOS_RATE), and logs every
//     event the Writer acknowledged, in order, to an fsynced, append-only
//     ack log;
//   - two readers (r1 long-poll, r2 SSE or auto): each tails the stream
//     with a durable.Reader whose position is kept in an offsetstore.File,
//     commits after every message and logs every handled message to a
//     handled log.
//
// The seed also picks the server's read chunk limit (256 B, 4 KiB or
// 1 MiB: small limits split reads inside a writer's batch, so positions
// carry a skip), its SSE close interval (1 s or 5 s), r2's live mode, and
// each writer's max batch (1, 3 or 1000 messages) and max batches in
// flight (1 or 4: small pipelined batches make sequence gaps and their
// resends common). Workers' clients time out after 1 s (WithRequestTimeout, per
// append attempt and catch-up read), shorter than a server freeze, so a
// request the frozen server applies later has already been given up and
// retried.
// The server listens on a port below the ephemeral range: while it is
// down, a client connecting from an ephemeral port equal to the server's
// would connect to itself and keep the port from the restarted server.
//
// For about 45 s (CHAOS_DURATION) it then kills a random process — a
// writer, a reader or the server — every 0.2–1.2 s and restarts it after a
// short random pause; restarts are asynchronous, so outages overlap. One
// server action in three is a freeze instead (SIGSTOP, SIGCONT 0.3–2.5 s
// later): requests hang rather than fail, and what the server had read is
// applied late. The random source is seeded; the seed is printed and
// CHAOS_SEED replays the same schedule of actions and pauses (the timing of
// the processes themselves still varies). A process that exits on its own
// (the SDK gave up, or a worker found its state inconsistent) is a
// violation, and is restarted.
//
// Then the supervisor stops the writers gracefully (SIGTERM: Close flushes
// and the last acknowledgements are logged), closes the stream, waits for
// both readers to end with io.EOF, reads the whole stream with a Client and
// checks the history (Check). It prints one summary line, and a detail
// line (freezes, unacknowledged and rewritten events):
//
//	chaos: seed=S events=N acked=A kills=K (server=a writers=b readers=c) restarts=R retries=T violations=V
//
// Retries are the Writers' and the Readers' retries of a failure (seen by
// a HookRetry), as the workers report them. On failure the
// state directory (logs, stores, each process's stderr and a timeline of
// every action) is kept and its path printed; CHAOS_KEEP=1 keeps it always.
//
// # What is checked, and why it is what the protocol promises
//
// Every event carries its writer, the producer epoch of the writer process
// that wrote it (one epoch per process: the worker predicts it from the
// epoch store exactly as the Writer computes it, and verifies the Writer's
// Epoch after the first acknowledgement) and a sequence number. A restarted
// writer resumes after the highest sequence number in its ack log.
//
// PROTOCOL.md §5.2.1 deduplicates by (producer, epoch, seq): a retry within
// one epoch is never appended twice, and a request of an older epoch is
// refused once a newer one was seen. It promises nothing across epochs: a
// batch that reached the server but whose acknowledgement the killed
// process never logged is written again by its successor under the new
// epoch ("at least once across crashes"). So the checker demands:
//
//   - every acknowledged (writer, epoch, seq) is in the stream, before the
//     offset its acknowledgement reported;
//   - no (writer, epoch, seq) is in the stream twice;
//   - within one (writer, epoch), sequence numbers are consecutive: nothing
//     lost or reordered inside a session;
//   - per writer, epochs never go backwards in stream order (fencing: a
//     zombie request of an older epoch cannot land after the new session
//     began);
//   - per writer, the sequence numbers in the stream cover 0..max with no
//     hole;
//   - no (writer, seq) acknowledged under one epoch appears under a later
//     epoch (a successor resumes after the last acknowledged seq):
//     duplicates across epochs are allowed only for events that were never
//     acknowledged.
//
// # Exactly-once handling with commit-per-message
//
// With commit-after-handle a reader killed between handling a message and
// committing it handles that one message again. To check exactly-once
// delivery into the handled log, the log append and the commit are made
// idempotent together, the same technique as the CLI's --output with
// --offset-file: a reader writes the log line and fsyncs it, then commits
// the message with Position.Meta set to the handled log's length just
// after that line, so the position and the log length are saved in one
// atomic write. On restart the reader truncates its handled log to the
// Meta of its saved position (0 when none) before reading on, so a line
// written but not committed is dropped and its message delivered again.
// The length is exact and needs no comparison of positions. The offset
// store the worker gives the Reader also refuses any save of a position
// that no handled line backs, or with another length: the Reader must
// never save a position past a message the caller has not handled.
//
// The checker then demands that each handled log equals the stream,
// message for message, in order, with positions that only grow (offset,
// then skip) across the reader's restarts; and the supervisor that each
// finished reader's saved position is that of its last handled line, with
// the log's full length. (Positions are compared within one reader only:
// two readers may name one message differently, as (offset, skip) depends
// on where each read started, and such names do not order across readers.)
package chaos
