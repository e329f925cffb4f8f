// Command goclient is the Go side of the comparison with the TypeScript
// reference client (bench/ts-client.mjs): the same work against the same
// running `durable serve`, printing the same one-line result.
//
//	goclient write <base-url> <messages>   Writer[T], 100-byte JSON messages
//	goclient read  <base-url> <stream>     Reader[T] catch-up, message by message
//	goclient fill  <base-url> <stream> <messages>  create a JSON stream of small messages
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/durablego/durable"
)

type msg struct {
	ID      int    `json:"id"`
	Payload string `json:"payload"`
}

type rec struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	OK   bool   `json:"ok"`
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "goclient:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 3 {
		return errors.New("usage: goclient write|read|fill <base-url> <messages|stream> [messages]")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	c, err := durable.NewClient(args[1], durable.WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		return err
	}
	ctx := context.Background()
	switch args[0] {
	case "write":
		n, err := strconv.Atoi(args[2])
		if err != nil {
			return err
		}
		name := fmt.Sprintf("go-write-%d-%d", os.Getpid(), time.Now().UnixNano())
		if _, err := c.Create(ctx, name, durable.CreateOptions{ContentType: "application/json"}); err != nil {
			return err
		}
		msgs := make([]msg, 1000)
		for i := range msgs {
			id := 1000000 + i
			msgs[i] = msg{ID: id, Payload: strings.Repeat("x", 100-len(fmt.Sprintf(`{"id":%d,"payload":""}`, id)))}
		}
		w, err := durable.NewWriter(c, name, durable.JSONCodec[msg]{})
		if err != nil {
			return err
		}
		t0 := time.Now()
		for i := range n {
			if err := w.Write(ctx, msgs[i%len(msgs)]); err != nil {
				return err
			}
		}
		if err := w.Close(ctx); err != nil {
			return err
		}
		s := time.Since(t0).Seconds()
		fmt.Printf("write %d %.3f %.0f\n", n, s, float64(n)/s)
	case "read":
		r, err := durable.NewReader(c, args[2], durable.JSONCodec[rec]{}, durable.WithLive(durable.LiveNone), durable.WithManualCommit())
		if err != nil {
			return err
		}
		defer r.Close(ctx)
		t0 := time.Now()
		n, sum := 0, 0
		for {
			m, err := r.Next(ctx)
			if errors.Is(err, durable.ErrCaughtUp) {
				break
			}
			if err != nil {
				return err
			}
			n++
			sum += m.Value.ID
		}
		s := time.Since(t0).Seconds()
		fmt.Printf("read %d %.3f %.0f\n", n, s, float64(n)/s)
	case "fill":
		if len(args) < 4 {
			return errors.New("fill needs <stream> <messages>")
		}
		n, err := strconv.Atoi(args[3])
		if err != nil {
			return err
		}
		if _, err := c.Create(ctx, args[2], durable.CreateOptions{ContentType: "application/json"}); err != nil {
			return err
		}
		const batch = 10_000
		var buf []byte
		for i := 0; i < n; i += batch {
			buf = append(buf[:0], '[')
			for j := i; j < min(i+batch, n); j++ {
				if j > i {
					buf = append(buf, ',')
				}
				buf = fmt.Appendf(buf, `{"id":%d,"name":"user-%d","ok":true}`, j, j)
			}
			buf = append(buf, ']')
			if _, err := c.Append(ctx, args[2], buf, durable.AppendOptions{ContentType: "application/json"}); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unknown mode %q", args[0])
	}
	return nil
}
