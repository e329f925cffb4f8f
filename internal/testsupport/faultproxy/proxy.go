// Package faultproxy is an in-process TCP proxy for tests that injects
// network faults between a client and a loopback server: refused and reset
// connections, a stopped listener, resets or truncation after N bytes,
// latency, bandwidth limits, a slowloris dribble, a blackhole, and cutting
// every open connection at once.
//
// A Proxy listens on 127.0.0.1 on a free port and forwards every accepted
// connection to a fixed loopback target. Faults are switched at run time
// from test code and every method is safe for concurrent use. Shaping
// (latency, bandwidth, slowloris, blackhole) applies to open and new
// connections alike and takes effect immediately, including in the middle
// of a wait; SetRefuse only affects connections accepted after the call, so
// keep-alive connections a client already holds keep working until CutAll.
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Direction selects which half of a proxied connection a fault applies to.
type Direction int

const (
	// Upstream is the client→server half: request bytes.
	Upstream Direction = 1
	// Downstream is the server→client half: response bytes.
	Downstream Direction = 2
	// Both selects both halves (shaping setters only).
	Both Direction = Upstream | Downstream
)

// String returns "upstream", "downstream" or "both".
func (d Direction) String() string {
	switch d {
	case Upstream:
		return "upstream"
	case Downstream:
		return "downstream"
	case Both:
		return "both"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// index maps a single direction to 0 (upstream) or 1 (downstream).
func (d Direction) index() int {
	if d == Downstream {
		return 1
	}
	return 0
}

// ErrNotLoopback is returned by New for a target that is not a loopback address.
var ErrNotLoopback = errors.New("faultproxy: target is not a loopback address")

// ErrClosed is returned by Restart after Close.
var ErrClosed = errors.New("faultproxy: proxy closed")

// Stats are the proxy's counters since New.
type Stats struct {
	Accepted  int64 // connections accepted, including refused ones
	Refused   int64 // connections reset at accept because of SetRefuse
	Resets    int64 // connections the proxy ended with RST (refuse, ResetAfter, CutAll, Stop, dial failure)
	Open      int   // connections currently being proxied
	BytesUp   int64 // bytes forwarded client→server (counted as they are written)
	BytesDown int64 // bytes forwarded server→client (counted as they are written)
}

// shaping is the traffic shaping of one direction.
type shaping struct {
	latency   time.Duration
	bandwidth int64 // bytes per second, 0 = unlimited
	slowloris time.Duration
}

// rule is an armed ResetAfter / CloseAfter fault for one direction.
type rule struct {
	n     int64
	reset bool // RST; false = graceful close (FIN)
	count int  // connections still to claim it
}

// Proxy is a fault-injecting TCP proxy. Create it with New; the zero value
// is not usable.
type Proxy struct {
	target string
	addr   string
	ctx    context.Context // cancelled by Close: aborts dials
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the proxy started
	life   sync.Mutex     // serialises Stop, Restart and Close

	mu         sync.Mutex
	ln         net.Listener  // nil while stopped
	acceptDone chan struct{} // closed when the current accept loop exits
	closed     bool
	conns      map[*conn]struct{}
	refuse     bool
	blackhole  bool
	shape      [2]shaping
	rules      [2]rule
	changed    chan struct{} // closed and replaced on every fault change

	accepted, refused, resets, bytesUp, bytesDown atomic.Int64
}

// New starts a proxy on 127.0.0.1 with a free port, forwarding to target,
// which is "host:port" or a URL such as an httptest.Server's URL. The target
// must be a loopback address ("localhost", 127.0.0.0/8 or ::1); any other
// host is refused with ErrNotLoopback.
func New(target string) (*Proxy, error) {
	hostport, err := loopbackTarget(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		target:  hostport,
		addr:    ln.Addr().String(),
		ctx:     ctx,
		cancel:  cancel,
		conns:   make(map[*conn]struct{}),
		changed: make(chan struct{}),
	}
	p.mu.Lock()
	p.startLocked(ln)
	p.mu.Unlock()
	return p, nil
}

// loopbackTarget validates target and returns it as host:port.
func loopbackTarget(target string) (string, error) {
	hostport := target
	if strings.Contains(target, "://") {
		u, err := url.Parse(target)
		if err != nil {
			return "", fmt.Errorf("faultproxy: target: %w", err)
		}
		hostport = u.Host
		if u.Port() == "" {
			switch u.Scheme {
			case "http":
				hostport = net.JoinHostPort(u.Hostname(), "80")
			case "https":
				hostport = net.JoinHostPort(u.Hostname(), "443")
			}
		}
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", fmt.Errorf("faultproxy: target %q: %w", target, err)
	}
	if port == "" {
		return "", fmt.Errorf("faultproxy: target %q: missing port", target)
	}
	if strings.EqualFold(host, "localhost") {
		return hostport, nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("%w: %q", ErrNotLoopback, host)
	}
	return hostport, nil
}

// Addr returns the proxy's listening address, "127.0.0.1:PORT". It stays the
// same across Stop and Restart.
func (p *Proxy) Addr() string { return p.addr }

// URL returns "http://" + Addr().
func (p *Proxy) URL() string { return "http://" + p.addr }

// Target returns the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// startLocked serves ln in a new accept loop. p.mu must be held.
func (p *Proxy) startLocked(ln net.Listener) {
	done := make(chan struct{})
	p.ln = ln
	p.acceptDone = done
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(done)
		p.acceptLoop(ln)
	}()
}

func (p *Proxy) acceptLoop(ln net.Listener) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // listener closed by Stop or Close
		}
		p.accepted.Add(1)
		// Counters move before the reset they count, so a client that saw
		// the reset finds it in Stats.
		p.mu.Lock()
		if p.closed || p.ln != ln {
			p.mu.Unlock()
			p.resets.Add(1)
			resetConn(nc)
			continue
		}
		if p.refuse {
			p.mu.Unlock()
			p.refused.Add(1)
			p.resets.Add(1)
			resetConn(nc)
			continue
		}
		c := &conn{p: p, client: nc, done: make(chan struct{})}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.wg.Done()
			c.run()
		}()
	}
}

// Close stops the listener, resets every open connection and waits for
// every goroutine the proxy started. It is idempotent.
func (p *Proxy) Close() error {
	p.life.Lock()
	defer p.life.Unlock()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	ln := p.ln
	p.ln = nil
	p.mu.Unlock()
	p.cancel()
	if ln != nil {
		_ = ln.Close()
	}
	p.CutAll()
	p.wg.Wait()
	return nil
}

// Stop closes the listener, so that new connections are refused by the
// kernel (ECONNREFUSED), and resets every open connection, like a server
// process that died. Restart listens on the same port again; nothing
// reserves it meanwhile, though on loopback another taker is unlikely.
// Stop on a stopped or closed proxy does nothing.
func (p *Proxy) Stop() {
	p.life.Lock()
	defer p.life.Unlock()
	p.mu.Lock()
	ln, done := p.ln, p.acceptDone
	p.ln = nil
	p.mu.Unlock()
	if ln == nil {
		return
	}
	_ = ln.Close()
	<-done
	p.CutAll()
}

// Restart listens again on the same address after Stop. It is a no-op on a
// running proxy and returns ErrClosed after Close.
func (p *Proxy) Restart() error {
	p.life.Lock()
	defer p.life.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if p.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("faultproxy: restart: %w", err)
	}
	p.startLocked(ln)
	return nil
}

// Stopped reports whether the listener is down (after Stop or Close).
func (p *Proxy) Stopped() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ln == nil
}

// SetRefuse switches refusal on or off: while on, every new connection is
// accepted and immediately closed with RST (SO_LINGER 0), which a client
// sees as "connection reset by peer". Open connections are not touched.
func (p *Proxy) SetRefuse(on bool) {
	p.update(func() { p.refuse = on })
}

// SetBlackhole switches the blackhole on or off: while on, every byte read
// from either side of every connection, open or new, is discarded, so
// requests never reach the server and nothing ever comes back. Switching it
// off forwards data read from then on; what was discarded is lost.
func (p *Proxy) SetBlackhole(on bool) {
	p.update(func() { p.blackhole = on })
}

// SetLatency delays every chunk travelling in dir by d from the moment the
// proxy read it (a delay line, not a per-chunk pause). 0 turns it off.
func (p *Proxy) SetLatency(dir Direction, d time.Duration) {
	p.eachDir(dir, func(s *shaping) { s.latency = d })
}

// SetBandwidth limits dir to bytesPerSecond. 0 removes the limit.
func (p *Proxy) SetBandwidth(dir Direction, bytesPerSecond int64) {
	p.eachDir(dir, func(s *shaping) { s.bandwidth = max(bytesPerSecond, 0) })
}

// SetSlowloris dribbles dir one byte every interval (it overrides
// SetBandwidth while on). 0 turns it off; a pending wait ends at once.
func (p *Proxy) SetSlowloris(dir Direction, interval time.Duration) {
	p.eachDir(dir, func(s *shaping) { s.slowloris = interval })
}

// ResetAfter arms a reset: each of the next count connections that carry
// data in dir (Upstream or Downstream) forwards n more bytes in that
// direction and is then reset with RST on both sides — "connection reset
// mid-body" for Downstream. A connection claims the fault when its first
// chunk in dir after the call arrives, so pooled keep-alive connections are
// affected too. n = 0 resets before forwarding anything. count <= 0 disarms.
// It replaces any fault armed earlier for dir.
//
// Note that net/http's Transport silently retries an idempotent request
// whose reused connection fails before any response byte arrives; choose n
// past the response headers to make the failure reach the caller.
func (p *Proxy) ResetAfter(n int64, dir Direction, count int) {
	p.arm(n, dir, count, true)
}

// CloseAfter is ResetAfter with a graceful close (FIN) instead of RST: the
// peer sees a clean end of stream after n bytes — a truncated body that an
// HTTP client reports as io.ErrUnexpectedEOF.
func (p *Proxy) CloseAfter(n int64, dir Direction, count int) {
	p.arm(n, dir, count, false)
}

func (p *Proxy) arm(n int64, dir Direction, count int, reset bool) {
	if dir != Upstream && dir != Downstream {
		panic("faultproxy: ResetAfter/CloseAfter need Upstream or Downstream, got " + dir.String())
	}
	p.update(func() { p.rules[dir.index()] = rule{n: max(n, 0), reset: reset, count: max(count, 0)} })
}

// Pending returns how many connections have yet to claim the ResetAfter or
// CloseAfter fault armed for dir.
func (p *Proxy) Pending(dir Direction) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rules[dir.index()].count
}

// Clear removes every fault: refusal, blackhole, shaping and armed resets.
// It does not restart a stopped listener.
func (p *Proxy) Clear() {
	p.update(func() {
		p.refuse = false
		p.blackhole = false
		p.shape = [2]shaping{}
		p.rules = [2]rule{}
	})
}

// CutAll resets every open connection now and returns how many it cut.
func (p *Proxy) CutAll() int {
	p.mu.Lock()
	cs := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		cs = append(cs, c)
	}
	p.mu.Unlock()
	n := 0
	for _, c := range cs {
		if c.end(true) {
			n++
		}
	}
	return n
}

// Stats returns a snapshot of the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	open := len(p.conns)
	p.mu.Unlock()
	return Stats{
		Accepted:  p.accepted.Load(),
		Refused:   p.refused.Load(),
		Resets:    p.resets.Load(),
		Open:      open,
		BytesUp:   p.bytesUp.Load(),
		BytesDown: p.bytesDown.Load(),
	}
}

// update applies f under the lock and wakes every waiting connection so
// that it re-reads the faults.
func (p *Proxy) update(f func()) {
	p.mu.Lock()
	f()
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

func (p *Proxy) eachDir(dir Direction, f func(*shaping)) {
	p.update(func() {
		if dir&Upstream != 0 {
			f(&p.shape[0])
		}
		if dir&Downstream != 0 {
			f(&p.shape[1])
		}
	})
}

// state is what a forwarding loop needs to know about the current faults.
type state struct {
	shaping
	blackhole bool
	changed   <-chan struct{}
}

func (p *Proxy) state(i int) state {
	p.mu.Lock()
	defer p.mu.Unlock()
	return state{shaping: p.shape[i], blackhole: p.blackhole, changed: p.changed}
}

// claim takes one use of the fault armed for direction i, if any.
func (p *Proxy) claim(i int) (rule, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := &p.rules[i]
	if r.count <= 0 {
		return rule{}, false
	}
	r.count--
	return *r, true
}

func (p *Proxy) forget(c *conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// resetConn closes nc with RST instead of FIN.
func resetConn(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = nc.Close()
}
