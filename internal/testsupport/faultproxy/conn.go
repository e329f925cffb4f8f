package faultproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// chunkSize is the largest read from either side of a connection.
const chunkSize = 32 << 10

// queueLen bounds the chunks buffered per direction (the latency delay
// line), so a proxied connection holds at most queueLen*chunkSize bytes
// per direction.
const queueLen = 8

// errEnded stops a forwarding loop whose connection was ended.
var errEnded = errors.New("faultproxy: connection ended")

// conn is one proxied client connection and its upstream connection.
type conn struct {
	p      *Proxy
	client net.Conn
	done   chan struct{} // closed by end

	mu     sync.Mutex
	server net.Conn // nil until dialled
	ended  bool
	cancel context.CancelFunc
}

// chunk is data read from one side, stamped with when it was read.
type chunk struct {
	data []byte
	at   time.Time
}

// run dials the target and forwards both directions until the connection
// ends.
func (c *conn) run() {
	defer c.p.forget(c)
	ctx, cancel := context.WithCancel(c.p.ctx)
	defer cancel()
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.cancel = cancel
	c.mu.Unlock()

	var d net.Dialer
	sc, err := d.DialContext(ctx, "tcp", c.p.target)
	if err != nil {
		c.end(true) // backend down: the client sees a reset
		return
	}
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		resetConn(sc)
		return
	}
	c.server = sc
	c.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		c.pipe(Upstream.index(), c.client, sc)
	}()
	go func() {
		defer wg.Done()
		c.pipe(Downstream.index(), sc, c.client)
	}()
	wg.Wait()
	c.end(false)
}

// end closes both sides, with RST when reset is true, and reports whether
// this call ended the connection (false if it had already ended).
func (c *conn) end(reset bool) bool {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return false
	}
	c.ended = true
	sc, cancel := c.server, c.cancel
	close(c.done)
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if reset {
		c.p.resets.Add(1)
		resetConn(c.client)
		if sc != nil {
			resetConn(sc)
		}
		return true
	}
	_ = c.client.Close()
	if sc != nil {
		_ = sc.Close()
	}
	return true
}

// pipe forwards src to dst for direction i until src ends or the
// connection is ended. A reader goroutine feeds a bounded queue of
// timestamped chunks; this goroutine applies the faults and writes.
func (c *conn) pipe(i int, src, dst net.Conn) {
	ch := make(chan chunk, queueLen)
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		defer close(ch)
		buf := make([]byte, chunkSize)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				data := append([]byte(nil), buf[:n]...) // the queue owns its chunks
				select {
				case ch <- chunk{data: data, at: time.Now()}:
				case <-c.done:
					return
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					c.end(true) // a reset or error on one side resets the other
				}
				return
			}
		}
	}()
	defer rwg.Wait()

	f := forwarder{c: c, i: i, dst: dst}
	for {
		select {
		case ck, ok := <-ch:
			if !ok {
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite() // pass the half-close on
				}
				return
			}
			if err := f.forward(ck); err != nil {
				if !errors.Is(err, errEnded) {
					c.end(true)
				}
				return
			}
		case <-c.done:
			return
		}
	}
}

// forwarder writes the chunks of one direction of one connection.
type forwarder struct {
	c   *conn
	i   int
	dst net.Conn

	claimed bool  // this direction holds a ResetAfter/CloseAfter fault
	budget  int64 // bytes left before the fault fires
	reset   bool  // the claimed fault resets (else closes)
}

// forward writes ck to dst under the current faults.
func (f *forwarder) forward(ck chunk) error {
	p := f.c.p
	data := ck.data
	for len(data) > 0 {
		st := p.state(f.i)
		if st.blackhole {
			return nil
		}
		if st.latency > 0 {
			if d := time.Until(ck.at.Add(st.latency)); d > 0 {
				if !f.c.wait(d, st.changed) {
					return errEnded
				}
				continue // the faults may have changed
			}
		}
		if !f.claimed {
			if r, ok := p.claim(f.i); ok {
				f.claimed, f.budget, f.reset = true, r.n, r.reset
			}
		}
		if f.claimed && f.budget == 0 {
			f.c.end(f.reset)
			return errEnded
		}
		piece := len(data)
		var pause time.Duration
		switch {
		case st.slowloris > 0:
			piece, pause = 1, st.slowloris
		case st.bandwidth > 0:
			piece = int(min(int64(piece), max(1, st.bandwidth/20)))
			pause = time.Duration(int64(piece) * int64(time.Second) / st.bandwidth)
		}
		if f.claimed {
			piece = int(min(int64(piece), f.budget))
		}
		// Counted before the write, so that a peer never holds bytes the
		// counters do not show yet; what the write refuses is taken back.
		count := &p.bytesUp
		if f.i != 0 {
			count = &p.bytesDown
		}
		count.Add(int64(piece))
		n, err := f.dst.Write(data[:piece])
		count.Add(int64(n - piece))
		if err != nil {
			return err
		}
		data = data[piece:]
		if f.claimed {
			f.budget -= int64(n)
			if f.budget == 0 {
				f.c.end(f.reset)
				return errEnded
			}
		}
		if pause > 0 && !f.c.wait(pause, st.changed) {
			return errEnded
		}
	}
	return nil
}

// wait waits for d, or until the faults change; it returns false if the
// connection ended first.
func (c *conn) wait(d time.Duration, changed <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-changed:
		return true
	case <-c.done:
		return false
	}
}
