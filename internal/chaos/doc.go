// Package chaos is the chaos run of the durable SDK: real processes killed
// with SIGKILL at random moments, and a check of the whole history
// afterwards, in the manner of Jepsen. It holds the record formats and the
// history checker shared by the supervisor (TestChaos, behind the build tag
// "chaos") and the worker program (internal/chaos/worker).
//
//	go test -race -tags chaos -run Chaos -count=1 ./internal/chaos/...
//
// # The run
//
// The supervisor builds cmd/durable and the worker once (the worker without
// -race, for speed; the supervisor itself runs under -race), picks a free
// port up front so that a restarted server keeps its URL, and starts
//
//   - `durable serve --data-dir DIR --addr 127.0.0.1:PORT` (fsync before
//     every acknowledgement);
//   - three writers: each appends events {"w": id, "e": epoch, "s": seq}
//     with a durable.Writer (idempotent producer, epoch persisted in an
//     offsetstore.File so a restarted writer fences its predecessor) and
//     logs every event the Writer acknowledged to an fsynced, append-only
//     ack log;
//   - two readers (one long-poll, one SSE): each tails the stream with a
//     durable.Reader whose position is kept in an offsetstore.File,
//     commits after every message and logs every handled message to a
//     handled log.
//
// For about 45 s (CHAOS_DURATION) it then kills a random process — a
// writer, a reader or the server — every 0.2–1.2 s and restarts it after a
// short random pause; restarts are asynchronous, so outages overlap. One
// server action in three is a freeze instead (SIGSTOP, SIGCONT 0.3–2.5 s
// later): requests hang rather than fail, and what the server had read is
// applied late. The random source is seeded; the seed is printed and
// CHAOS_SEED replays the same schedule of actions and pauses (the timing of
// the processes themselves still varies). Then the
// supervisor stops the writers gracefully (SIGTERM: Close flushes and the
// last acknowledgements are logged), closes the stream, waits for both
// readers to end with io.EOF, reads the whole stream with a Client and
// checks the history (Check). It prints one summary line:
//
//	chaos: seed=S events=N acked=A kills=K (server=a writers=b readers=c) restarts=R retries=T violations=V
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
// the message's position, and the offset store it gives the Reader stamps
// every saved position's Meta with the handled log's length just after that
// message's line. On restart the reader truncates its handled log to the
// Meta of its saved position (0 when none) before reading on, so a line
// written but not committed is dropped and its message delivered again.
// (Truncating to "the lines at or before the saved position" by comparing
// positions would not do: the same message has different (offset, skip)
// names in reads that start at different offsets.) The checker then demands
// that each handled log equals the stream, message for message, in order.
package chaos
