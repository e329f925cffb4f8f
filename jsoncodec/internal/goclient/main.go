// Command goclient is bench/goclient's catch-up reader with a choice of
// codec, for the comparison of jsoncodec with encoding/json and with the
// TypeScript reference client against one running `durable serve`
// (bench/run.sh). It prints the same one-line result as bench/goclient:
//
//	goclient read <base-url> <stream> json|json-ahead|jsoncodec
//
// json decodes in Next (WithDecodeAhead(0)), json-ahead decodes the next
// chunk in the background (the default), jsoncodec decodes in Next with
// jsoncodec.Codec. GOMAXPROCS=1 runs it on one core.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/jsoncodec"
)

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
	if len(args) != 4 || args[0] != "read" {
		return errors.New("usage: goclient read <base-url> <stream> json|json-ahead|jsoncodec")
	}
	c, err := durable.NewClient(args[1])
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()
	opts := []durable.Option{durable.WithLive(durable.LiveNone), durable.WithManualCommit()}
	var codec durable.Codec[rec] = durable.JSONCodec[rec]{}
	switch args[3] {
	case "json":
		opts = append(opts, durable.WithDecodeAhead(0))
	case "json-ahead":
	case "jsoncodec":
		codec = jsoncodec.Codec[rec]{}
	default:
		return fmt.Errorf("unknown codec %q", args[3])
	}
	r, err := durable.NewReader(c, args[2], codec, opts...)
	if err != nil {
		return err
	}
	defer r.Close(context.Background())
	ctx := context.Background()
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
	if want := n * (n - 1) / 2; sum != want {
		return fmt.Errorf("read %d messages whose ids add up to %d, not %d", n, sum, want)
	}
	fmt.Printf("read %d %.3f %.0f\n", n, s, float64(n)/s)
	return nil
}
