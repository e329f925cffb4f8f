package durable_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/durablego/durable"
	"github.com/durablego/durable/testserver"
)

// Every example runs against an in-process testserver.

func ExampleClient_Create() {
	srv := testserver.New()
	defer srv.Close()
	c, err := durable.NewClient(srv.StreamURL(""))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	res, err := c.Create(ctx, "orders", durable.CreateOptions{ContentType: "application/json"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created:", res.Created)

	// Create is idempotent: the same configuration again is fine...
	res, err = c.Create(ctx, "orders", durable.CreateOptions{ContentType: "application/json"})
	fmt.Println("created again:", res.Created, err)

	// ...a different one is not.
	_, err = c.Create(ctx, "orders", durable.CreateOptions{ContentType: "text/plain"})
	fmt.Println(errors.Is(err, durable.ErrStreamExists))
	// Output:
	// created: true
	// created again: false <nil>
	// true
}

func ExampleClient_Append() {
	srv := testserver.New()
	defer srv.Close()
	c, _ := durable.NewClient(srv.StreamURL(""))
	ctx := context.Background()
	if _, err := c.Create(ctx, "events", durable.CreateOptions{ContentType: "application/json"}); err != nil {
		log.Fatal(err)
	}

	// A plain append.
	if _, err := c.AppendJSON(ctx, "events", map[string]string{"type": "created"}, durable.AppendOptions{}); err != nil {
		log.Fatal(err)
	}

	// An idempotent producer: sending the same (ID, Epoch, Seq) twice is
	// applied once, so retries are always safe.
	p := &durable.Producer{ID: "worker-1", Epoch: 0, Seq: 0}
	first, _ := c.AppendJSON(ctx, "events", map[string]string{"type": "paid"}, durable.AppendOptions{Producer: p})
	again, _ := c.AppendJSON(ctx, "events", map[string]string{"type": "paid"}, durable.AppendOptions{Producer: p})
	fmt.Println("first duplicate:", first.Duplicate, "second duplicate:", again.Duplicate)

	ch, _ := c.Read(ctx, "events", durable.ReadOptions{})
	fmt.Println(string(ch.Data))
	// Output:
	// first duplicate: false second duplicate: true
	// [{"type":"created"},{"type":"paid"}]
}

func ExampleClient_Head() {
	srv := testserver.New()
	defer srv.Close()
	c, _ := durable.NewClient(srv.StreamURL(""))
	ctx := context.Background()
	if _, err := c.Create(ctx, "logs", durable.CreateOptions{ContentType: "text/plain", Data: []byte("boot\n")}); err != nil {
		log.Fatal(err)
	}

	info, err := c.Head(ctx, "logs")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.ContentType, "closed:", info.Closed)

	_, err = c.Head(ctx, "missing")
	fmt.Println(errors.Is(err, durable.ErrNotFound))
	// Output:
	// text/plain closed: false
	// true
}

func ExampleClient_Read() {
	srv := testserver.New()
	defer srv.Close()
	c, _ := durable.NewClient(srv.StreamURL(""))
	ctx := context.Background()
	if _, err := c.Create(ctx, "logs", durable.CreateOptions{ContentType: "text/plain", Data: []byte("one\n")}); err != nil {
		log.Fatal(err)
	}
	if _, err := c.Append(ctx, "logs", []byte("two\n"), durable.AppendOptions{ContentType: "text/plain"}); err != nil {
		log.Fatal(err)
	}
	if _, err := c.CloseStream(ctx, "logs", nil, durable.AppendOptions{}); err != nil {
		log.Fatal(err)
	}

	// Read until EOF: each read starts at the previous NextOffset. The
	// stream is already closed, so the chunk that reaches its end says so.
	offset := durable.OffsetStart
	for {
		ch, err := c.Read(ctx, "logs", durable.ReadOptions{Offset: offset})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%q up-to-date=%v closed=%v\n", ch.Data, ch.UpToDate, ch.Closed)
		if ch.Closed {
			break
		}
		offset = ch.NextOffset
	}
	// Output:
	// "one\ntwo\n" up-to-date=true closed=true
}

func ExampleClient_CloseStream() {
	srv := testserver.New()
	defer srv.Close()
	c, _ := durable.NewClient(srv.StreamURL(""))
	ctx := context.Background()
	if _, err := c.Create(ctx, "job-42", durable.CreateOptions{ContentType: "text/plain"}); err != nil {
		log.Fatal(err)
	}

	// Append a final message and close, atomically.
	if _, err := c.CloseStream(ctx, "job-42", []byte("done"), durable.AppendOptions{ContentType: "text/plain"}); err != nil {
		log.Fatal(err)
	}
	_, err := c.Append(ctx, "job-42", []byte("late"), durable.AppendOptions{ContentType: "text/plain"})
	fmt.Println(errors.Is(err, durable.ErrStreamClosed))
	// Output:
	// true
}

func ExampleClient_Delete() {
	srv := testserver.New()
	defer srv.Close()
	c, _ := durable.NewClient(srv.StreamURL(""))
	ctx := context.Background()
	if _, err := c.Create(ctx, "tmp", durable.CreateOptions{ContentType: "text/plain"}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Delete(ctx, "tmp"))
	fmt.Println(errors.Is(c.Delete(ctx, "tmp"), durable.ErrNotFound))
	// Output:
	// <nil>
	// true
}

func ExampleClient_OpenSSE() {
	srv := testserver.New()
	defer srv.Close()
	c, _ := durable.NewClient(srv.StreamURL(""))
	ctx := context.Background()
	if _, err := c.Create(ctx, "feed", durable.CreateOptions{ContentType: "text/plain", Data: []byte("hello"), Closed: true}); err != nil {
		log.Fatal(err)
	}
	s, err := c.OpenSSE(ctx, "feed", durable.ReadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	for {
		ch, err := s.Next(ctx)
		if err != nil {
			fmt.Println("end:", err)
			break
		}
		fmt.Printf("%q closed=%v\n", ch.Data, ch.Closed)
	}
	// Output:
	// "hello" closed=true
	// end: EOF
}
