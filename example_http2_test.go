package durable_test

import (
	"context"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/testserver"
)

// Many live Readers on one Client over cleartext HTTP/2: their long-polls
// are streams of one shared connection instead of one connection each.
func ExampleWithUnencryptedHTTP2() {
	srv := testserver.New(testserver.WithUnencryptedHTTP2(true)) // durable serve --h2c
	defer srv.Close()
	c, err := durable.NewClient(srv.StreamURL(""), durable.WithUnencryptedHTTP2())
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseIdleConnections()
	ctx := context.Background()

	const n = 100
	var wg sync.WaitGroup
	got := make([]string, n)
	for i := range n {
		name := fmt.Sprintf("chat/%d", i)
		if _, err := c.Create(ctx, name, durable.CreateOptions{ContentType: "text/plain"}); err != nil {
			log.Fatal(err)
		}
		r, err := durable.NewReader(c, name, durable.BytesCodec{})
		if err != nil {
			log.Fatal(err)
		}
		defer r.Close(context.Background())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if m, err := r.Next(ctx); err == nil {
				got[i] = string(m.Value)
			}
		}()
	}
	for srv.Waiting("") < n { // until every Reader waits in a long-poll
		time.Sleep(time.Millisecond)
	}
	for i := range n {
		if _, err := c.Append(ctx, fmt.Sprintf("chat/%d", i), []byte(fmt.Sprint("hello ", i)), durable.AppendOptions{ContentType: "text/plain"}); err != nil {
			log.Fatal(err)
		}
	}
	wg.Wait()
	fmt.Println(got[0], "…", got[n-1])
	// 100 creates, 100 catch-up reads, 100 long-polls and 100 appends.
	fmt.Println("connections:", srv.Connections().Accepted, "requests:", srv.ProtocolRequests())
	// Output:
	// hello 0 … hello 99
	// connections: 1 requests: map[HTTP/2.0:400]
}
