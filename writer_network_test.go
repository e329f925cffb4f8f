package durable

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/durablego/durable/internal/testsupport/faultproxy"
	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
)

// TestWriterThroughNetworkFaults writes through a TCP proxy with latency
// whose connections are cut mid-request and whose listener goes down for a
// while: every message still lands exactly once, in order.
func TestWriterThroughNetworkFaults(t *testing.T) {
	t.Parallel()
	srv := testserver.New()
	t.Cleanup(srv.Close)
	p, err := faultproxy.New(srv.URL()[len("http://"):])
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	p.SetLatency(faultproxy.Upstream, time.Millisecond)
	c, err := NewClient("http://"+p.Addr()+testserver.DefaultPrefix, WithRetry(writerRetry()))
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	ctx := context.Background()
	_, err = c.Create(ctx, "net", CreateOptions{ContentType: "application/json"})
	require.NoError(t, err)
	e := &wEnv{srv: srv, c: c, stream: "net"}

	stop := make(chan struct{})
	chaosDone := make(chan struct{})
	go func() {
		defer close(chaosDone)
		tick := time.NewTicker(8 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			switch i % 20 {
			case 10:
				p.Stop()
			case 15:
				_ = p.Restart()
			default:
				p.CutAll()
			}
		}
	}()

	const writers, per = 2, 1000
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for wi := range writers {
		w := newTestWriter[wevent](t, e, WithMaxBatchMessages(25), WithMaxInFlight(4))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range per {
				if err := w.Write(ctx, wevent{W: wi, N: n}); err != nil {
					errs[wi] = err
					return
				}
			}
			errs[wi] = w.Close(ctx)
		}()
	}
	wg.Wait()
	close(stop)
	<-chaosDone
	for _, err := range errs {
		require.NoError(t, err)
	}
	p.Clear()
	if p.Stopped() {
		require.NoError(t, p.Restart())
	}
	msgs, _ := e.readJSON(t)
	require.Len(t, msgs, writers*per)
	next := make([]int, writers)
	for _, m := range msgs {
		var ev wevent
		require.NoError(t, json.Unmarshal(m, &ev))
		require.Equal(t, next[ev.W], ev.N)
		next[ev.W]++
	}
	t.Logf("%d POSTs reached the server, proxy %+v", e.posts(), p.Stats())
}
