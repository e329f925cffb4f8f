package durable_test

// The README's code snippets. Each Example body below is pasted verbatim into
// README.md (the copies live in examples/SNIPPETS.md, which
// TestReadmeSnippets keeps in step), so the README's code compiles and its
// output is checked by `go test`.

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durablego/durable"
	"github.com/durablego/durable/offsetstore"
	"github.com/durablego/durable/testserver"
)

// Tail a stream, saving the position in an offset file; a restarted reader
// resumes right after the last message it committed.
func ExampleReader_resume() {
	srv := testserver.New() // any Durable Streams server will do
	defer srv.Close()
	// In a service: ctx, stop := signal.NotifyContext(ctx, os.Interrupt).
	ctx := context.Background()
	// The server's address; streams are under its /v1/stream/.
	client, err := durable.NewClient(srv.URL())
	if err != nil {
		log.Fatal(err)
	}
	if _, err := client.Create(ctx, "orders", durable.CreateOptions{ContentType: "application/json",
		Data: []byte(`[{"id":1},{"id":"two"},{"id":3},{"id":4}]`), Closed: true}); err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "orders")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	type Order struct{ ID int }
	for run := 1; run <= 2; run++ { // run 2: the service after a restart
		// One process at a time: OpenFile locks orders.offsets.lock beside it.
		store, err := offsetstore.OpenFile(filepath.Join(dir, "orders.offsets"))
		if err != nil {
			log.Fatal(err)
		}
		// The position is saved under the stream's path ("/v1/stream/orders");
		// WithKey gives each consumer of a stream a key of its own.
		r, err := durable.NewReader(client, "orders", durable.JSONCodec[Order]{}, durable.WithStore(store), durable.WithKey("billing"))
		if err != nil {
			log.Fatal(err)
		}
		for m, err := range r.Messages(ctx) { // live; ends if the stream is closed
			var bad *durable.DecodeError
			switch {
			case errors.As(err, &bad):
				log.Printf("skipping a message: %v", err) // and go on with the next
				continue
			case errors.Is(err, context.Canceled):
				return // stopped (Ctrl-C): not a failure
			case err != nil:
				log.Fatal(err)
			}
			fmt.Printf("run %d: order %d\n", run, m.Value.ID)
			if err := r.Commit(ctx, m.Position); err != nil { // handled: not delivered again
				log.Fatal(err)
			}
			if run == 1 && m.Value.ID == 3 {
				break // stop (a crash here would lose nothing committed)
			}
		}
		if err := r.Close(ctx); err != nil {
			log.Fatal(err)
		}
		if err := store.Close(); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// run 1: order 1
	// run 1: order 3
	// run 2: order 4
}

// Append from many goroutines, each through its own idempotent Writer: its
// batches are retried safely and land in the order it wrote them.
func ExampleWriter_workers() {
	srv := testserver.New()
	defer srv.Close()
	ctx := context.Background()
	client, err := durable.NewClient(srv.URL())
	if err != nil {
		log.Fatal(err)
	}
	if _, err := client.Create(ctx, "jobs", durable.CreateOptions{ContentType: "application/json"}); err != nil {
		log.Fatal(err)
	}
	epochs := offsetstore.NewMemory() // offsetstore.OpenFile(...) to survive restarts

	type Job struct{ Worker, N int }
	var wg sync.WaitGroup // one Writer may also be shared by many goroutines
	for i := range 3 {
		wg.Go(func() {
			w, err := durable.NewWriter(client, "jobs", durable.JSONCodec[Job]{},
				durable.WithProducerID(fmt.Sprintf("worker-%d", i)), // stable name...
				durable.WithEpochStore(epochs))                      // ...+ epoch: a restart fences its zombie
			if err != nil {
				log.Fatal(err)
			}
			for n := range 1000 {
				if err := w.Write(ctx, Job{Worker: i, N: n}); err != nil {
					log.Fatal(err)
				}
			}
			if err := w.Close(ctx); err != nil { // waits until all landed, or reports the loss
				log.Fatal(err)
			}
		})
	}
	wg.Wait()

	r, err := durable.NewReader(client, "jobs", durable.JSONCodec[Job]{}, durable.WithLive(durable.LiveNone))
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close(ctx)
	count := 0
	for _, err := range r.Messages(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		count++
	}
	fmt.Println(count, "jobs")
	// Output: 3000 jobs
}

// One Writer shared by many goroutines (an HTTP handler's, say): it is safe
// for concurrent use, batches what they write together, and keeps each
// goroutine's messages in the order it wrote them.
func ExampleWriter_shared() {
	srv := testserver.New()
	defer srv.Close()
	ctx := context.Background()
	client, err := durable.NewClient(srv.StreamURL(""))
	if err != nil {
		log.Fatal(err)
	}
	_, err = client.Create(ctx, "clicks", durable.CreateOptions{ContentType: "application/json"})
	if err != nil {
		log.Fatal(err)
	}
	w, err := durable.NewWriter(client, "clicks", durable.JSONCodec[string]{}) // one per process and stream
	if err != nil {
		log.Fatal(err)
	}

	var wg sync.WaitGroup
	for user := range 10 {
		wg.Go(func() { // a request handler, for example
			for n := range 100 {
				if err := w.Write(ctx, fmt.Sprintf("user %d click %d", user, n)); err != nil {
					log.Print(err) // the Writer failed: every later Write says so too
					return
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(ctx); err != nil { // at shutdown: flush, and report any loss
		log.Fatal(err)
	}
	ch, err := client.Read(ctx, "clicks", durable.ReadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.Count(string(ch.Data), "click"), "clicks landed")
	// Output: 1000 clicks landed
}

// Test your own code against an in-process server, with faults injected.
func Example_testserver() {
	// publish is the code under test.
	publish := func(ctx context.Context, c *durable.Client, order string) error {
		w, err := durable.NewWriter(c, "orders", durable.JSONCodec[string]{})
		if err != nil {
			return err
		}
		defer w.Close(ctx)
		_, err = w.WriteSync(ctx, order)
		return err
	}

	srv := testserver.New() // like httptest.NewServer; in a test: t.Cleanup(srv.Close)
	defer srv.Close()
	ctx := context.Background()
	client, err := durable.NewClient(srv.URL())
	if err != nil {
		log.Fatal(err)
	}
	if _, err := client.Create(ctx, "orders", durable.CreateOptions{ContentType: "application/json"}); err != nil {
		log.Fatal(err)
	}

	// The first two appends get 503: publish must retry (safely: writers are idempotent).
	srv.InjectFault(testserver.Fault{Path: "orders", Method: http.MethodPost, Status: 503, Count: 2})
	err = publish(ctx, client, "order-1")
	fmt.Println("publish:", err, "| POSTs:", srv.Requests("orders", http.MethodPost))

	if err := client.Delete(ctx, "orders"); err != nil {
		log.Fatal(err)
	}
	err = publish(ctx, client, "order-2")
	fmt.Println("deleted stream:", errors.Is(err, durable.ErrNotFound))
	// Output:
	// publish: <nil> | POSTs: 3
	// deleted stream: true
}

// readmeSnippets are the Examples above whose bodies are the README's code,
// in README order, with the heading and imports shown above each.
var readmeSnippets = []struct{ example, heading, imports string }{
	{"ExampleReader_resume", "Tailing with resume",
		"context fmt log os path/filepath github.com/durablego/durable github.com/durablego/durable/offsetstore github.com/durablego/durable/testserver"},
	{"ExampleWriter_workers", "Appending from workers",
		"context fmt log sync github.com/durablego/durable github.com/durablego/durable/offsetstore github.com/durablego/durable/testserver"},
	{"ExampleWriter_shared", "Sharing one Writer across goroutines",
		"context fmt log strings sync github.com/durablego/durable github.com/durablego/durable/testserver"},
	{"Example_testserver", "Testing your code with testserver",
		"context errors fmt log net/http github.com/durablego/durable github.com/durablego/durable/testserver"},
}

// snippetBody returns the body of function name in the Go file src, without
// its braces and with one level of indentation removed.
func snippetBody(t *testing.T, src []byte, name string) string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "", src, parser.ParseComments)
	require.NoError(t, err)
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Name.Name != name {
			continue
		}
		body := string(src[fset.Position(fn.Body.Lbrace).Offset+1 : fset.Position(fn.Body.Rbrace).Offset])
		body = strings.TrimPrefix(body, "\n")
		var b strings.Builder
		for _, line := range strings.SplitAfter(body, "\n") {
			b.WriteString(strings.TrimPrefix(line, "\t"))
		}
		return b.String()
	}
	t.Fatalf("no func %s", name)
	return ""
}

// TestReadmeSnippets checks that examples/SNIPPETS.md holds exactly the
// bodies of the README Examples (DURABLE_UPDATE_SNIPPETS=1 rewrites it).
// Each snippet must also appear verbatim in every file of mustContain.
func TestReadmeSnippets(t *testing.T) {
	t.Parallel()
	mustContain := []string{"README.md"}
	src, err := os.ReadFile("example_readme_test.go")
	require.NoError(t, err)
	var b strings.Builder
	b.WriteString("# README snippets\n\n" +
		"Generated from the Example functions in `example_readme_test.go`, which `go test` runs\n" +
		"and checks against their `// Output:` comments. Paste each block into README.md verbatim;\n" +
		"`TestReadmeSnippets` fails when this file and the Examples differ\n" +
		"(`DURABLE_UPDATE_SNIPPETS=1 go test -run TestReadmeSnippets .` rewrites it).\n")
	var blocks []string
	for _, s := range readmeSnippets {
		block := "```go\n" + snippetBody(t, src, s.example) + "```\n"
		blocks = append(blocks, block)
		fmt.Fprintf(&b, "\n## %s\n\nFrom `%s`; imports: `%s`\n\n%s", s.heading, s.example, strings.ReplaceAll(s.imports, " ", "`, `"), block)
	}
	const path = "examples/SNIPPETS.md"
	if os.Getenv("DURABLE_UPDATE_SNIPPETS") == "1" {
		require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	}
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, b.String(), string(got), "%s is stale: DURABLE_UPDATE_SNIPPETS=1 go test -run TestReadmeSnippets .", path)
	for _, file := range mustContain {
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		for i, block := range blocks {
			assert.Contains(t, string(data), block, "%s lacks the snippet of %s", file, readmeSnippets[i].example)
		}
	}
}
