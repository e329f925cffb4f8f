package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/durablego/durable"
)

const (
	clientName    = "durable-go"
	clientVersion = "0.1.0"

	defaultOpTimeout   = 20 * time.Second // a command other than read, unless init says otherwise
	maxCommandTimeout  = 25 * time.Second // the runner gives up after 30 s
	defaultReadTimeout = 5 * time.Second  // a read without timeoutMs
	retryElapsed       = 10 * time.Second // retries of one call stop after this
)

// adapter holds the state kept between commands.
type adapter struct {
	serverURL string
	opTimeout time.Duration
	hc        *http.Client
	tr        *http.Transport
	dyn       *dynamic
	ctypes    map[string]string  // stream path -> content type, as learnt
	writers   map[string]*writer // path|producer|epoch -> open Writer
}

func newAdapter() *adapter {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &adapter{
		opTimeout: defaultOpTimeout,
		tr:        tr,
		hc:        &http.Client{Transport: tr},
		dyn:       newDynamic(),
		ctypes:    map[string]string{},
		writers:   map[string]*writer{},
	}
}

// release stops every Writer still open and closes idle connections.
func (a *adapter) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for k, w := range a.writers {
		_ = w.w.Close(ctx)
		delete(a.writers, k)
	}
	a.tr.CloseIdleConnections()
}

// handle runs one command.
func (a *adapter) handle(ctx context.Context, cmd *command) result {
	switch cmd.Type {
	case "init":
		return a.init(cmd)
	case "shutdown":
		a.release()
		return result{Type: "shutdown", Success: true}
	case "set-dynamic-header":
		return a.dyn.set(cmd, true)
	case "set-dynamic-param":
		return a.dyn.set(cmd, false)
	case "clear-dynamic":
		a.dyn.clear()
		return result{Type: "clear-dynamic", Success: true}
	case "validate":
		return a.validate(ctx, cmd)
	}
	if a.serverURL == "" {
		return errResult(cmd.Type, codeInternal, 0, "init must come first")
	}
	a.dyn.begin()
	switch cmd.Type {
	case "create":
		return a.create(ctx, cmd)
	case "connect":
		return a.connect(ctx, cmd)
	case "append":
		return a.append(ctx, cmd)
	case "read":
		return a.read(ctx, cmd)
	case "head":
		return a.head(ctx, cmd)
	case "delete":
		return a.delete(ctx, cmd)
	case "close", "server-close":
		return a.close(ctx, cmd)
	case "idempotent-append":
		return a.idempotentAppend(ctx, cmd)
	case "idempotent-append-batch":
		return a.idempotentAppendBatch(ctx, cmd)
	case "idempotent-close":
		return a.idempotentClose(ctx, cmd)
	case "idempotent-detach":
		return a.idempotentDetach(ctx, cmd)
	case "benchmark":
		return a.benchmark(ctx, cmd)
	}
	return errResult(cmd.Type, codeNotSupported, 0, fmt.Sprintf("unknown command type %q", cmd.Type))
}

// init resets the adapter for a server and reports the SDK's features.
func (a *adapter) init(cmd *command) result {
	u, err := url.Parse(cmd.ServerURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errResult("init", codeInvalidArgument, 0, fmt.Sprintf("serverUrl %q is not an http(s) URL", cmd.ServerURL))
	}
	a.release()
	a.serverURL = strings.TrimRight(cmd.ServerURL, "/")
	a.opTimeout = defaultOpTimeout
	if cmd.TimeoutMs != nil && *cmd.TimeoutMs > 0 {
		a.opTimeout = min(time.Duration(*cmd.TimeoutMs)*time.Millisecond, maxCommandTimeout)
	}
	a.dyn.clear()
	clear(a.ctypes)
	return result{
		Type: "init", Success: true, ClientName: clientName, ClientVersion: clientVersion,
		Features: &features{
			Batching:             true, // Writer seals batches on count, bytes and linger
			SSE:                  true, // Client.OpenSSE, Reader WithLive(LiveSSE)
			LongPoll:             true, // Client.Read LiveLongPoll, Reader default
			Auto:                 true, // Reader WithLive(LiveAuto): catch-up, then SSE falling back to long-poll
			Streaming:            true, // Reader.Next / Messages and SSEStream.Next deliver as data arrives
			DynamicHeaders:       true, // WithHeaderFunc and WithQueryFunc, called for every attempt
			RetryOptions:         true, // WithRetry, checked by NewClient and NewWriter
			BatchItems:           true, // WithMaxBatch (messages must be > 0)
			StrictZeroValidation: true, // options reject zero instead of reading it as "default"
		},
	}
}

// opContext bounds a command other than read.
func (a *adapter) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, a.opTimeout)
}

// retryPolicy is the Client's default policy (see durable.WithRetry),
// bounded so that a command answers well inside the runner's timeout.
func retryPolicy() durable.RetryPolicy {
	return durable.RetryPolicy{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.2,
		MaxAttempts: 5, MaxElapsed: retryElapsed}
}

// client returns a Client with the command's headers and the dynamic
// headers and parameters.
func (a *adapter) client(headers map[string]string) (*durable.Client, error) {
	opts := []durable.Option{
		durable.WithHTTPClient(a.hc),
		durable.WithRetry(retryPolicy()),
		durable.WithHeaderFunc(a.dyn.headerFunc(headers)),
		durable.WithQueryFunc(a.dyn.queryFunc),
	}
	for k, v := range headers {
		opts = append(opts, durable.WithHeader(k, v))
	}
	return durable.NewClient(a.serverURL+"/", opts...)
}

// streamURL is the full URL of a stream path.
func (a *adapter) streamURL(path string) string {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return a.serverURL + path
}

// contentType returns the stream's content type as learnt from create,
// connect or head, asking the server (HEAD) when it is not known yet.
func (a *adapter) contentType(ctx context.Context, c *durable.Client, path string) (string, error) {
	if ct, ok := a.ctypes[path]; ok {
		return ct, nil
	}
	info, err := c.Head(ctx, a.streamURL(path))
	if err != nil {
		return "", err
	}
	a.ctypes[path] = info.ContentType
	return info.ContentType, nil
}

// isJSON reports whether a content type is application/json.
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	}
	return mt == "application/json"
}

// withSent adds the dynamic headers and params of the command's last request.
func (a *adapter) withSent(r result) result {
	r.HeadersSent, r.ParamsSent = a.dyn.sent()
	return r
}

// failure turns an SDK error into an error result with the protocol's code.
// onRead selects the read meaning of 400 (an invalid offset: the only
// parameter a read sends).
func failure(cmdType string, err error, onRead bool) result {
	code, status := classify(err, onRead)
	r := errResult(cmdType, code, status, err.Error())
	var e *durable.Error
	if errors.As(err, &e) {
		d := map[string]any{}
		if e.Op != "" {
			d["op"] = e.Op
		}
		if e.URL != "" {
			d["url"] = e.URL
		}
		if e.NextOffset != "" {
			d["finalOffset"] = string(e.NextOffset)
		}
		if errors.Is(err, durable.ErrProducerSeqGap) {
			d["producerExpectedSeq"], d["producerReceivedSeq"] = e.ExpectedSeq, e.ReceivedSeq
		}
		if errors.Is(err, durable.ErrStaleEpoch) {
			d["producerEpoch"] = e.ServerEpoch
		}
		if e.RetryAfter > 0 {
			d["retryAfterMs"] = e.RetryAfter.Milliseconds()
		}
		if len(d) > 0 {
			r.Details = d
		}
	}
	return r
}

// classify maps an error to a protocol error code and HTTP status.
func classify(err error, onRead bool) (code string, status int) {
	var e *durable.Error
	if errors.As(err, &e) {
		status = e.Status
	}
	var de *durable.DecodeError
	switch {
	case errors.Is(err, durable.ErrNotFound):
		return codeNotFound, or(status, http.StatusNotFound)
	case errors.Is(err, durable.ErrStreamClosed):
		return codeStreamClosed, or(status, http.StatusConflict)
	case errors.Is(err, durable.ErrSeqConflict), errors.Is(err, durable.ErrProducerSeqGap):
		return codeSeqConflict, or(status, http.StatusConflict)
	case errors.Is(err, durable.ErrStreamExists), errors.Is(err, durable.ErrContentTypeMismatch),
		errors.Is(err, durable.ErrProducerReused):
		return codeConflict, status
	case onRead && errors.Is(err, durable.ErrBadRequest):
		return codeInvalidOffset, status
	case onRead && errors.Is(err, durable.ErrInvalidArgument):
		return codeInvalidOffset, status
	case errors.Is(err, durable.ErrInvalidArgument), errors.Is(err, durable.ErrMessageTooLarge), errors.Is(err, durable.ErrEncode):
		return codeInvalidArgument, status
	case errors.As(err, &de), errors.Is(err, durable.ErrProtocol),
		errors.Is(err, durable.ErrResponseTooLarge):
		return codeParse, status
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return codeTimeout, status
	case status != 0:
		return codeUnexpected, status
	case isNetwork(err):
		return codeNetwork, 0
	}
	return codeInternal, status
}

func isNetwork(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) || errors.Is(err, durable.ErrDisconnected)
}

func or(v, def int) int {
	if v != 0 {
		return v
	}
	return def
}

// dynamic holds the headers and query parameters computed for every request.
type dynamic struct {
	mu      sync.Mutex
	headers map[string]*dynValue // by canonical header name
	params  map[string]*dynValue
	sentH   map[string]string // values used by the last request of the command
	sentP   map[string]string
}

type dynValue struct {
	name    string // as the command gave it
	kind    string // counter | timestamp | token
	counter int64
	token   string
}

func newDynamic() *dynamic {
	return &dynamic{headers: map[string]*dynValue{}, params: map[string]*dynValue{}}
}

func (v *dynValue) next() string {
	switch v.kind {
	case "counter":
		v.counter++
		return strconv.FormatInt(v.counter, 10)
	case "timestamp":
		return strconv.FormatInt(time.Now().UnixMilli(), 10)
	}
	return v.token
}

func (d *dynamic) set(cmd *command, header bool) result {
	t := "set-dynamic-param"
	if header {
		t = "set-dynamic-header"
	}
	switch cmd.ValueType {
	case "counter", "timestamp":
	case "token":
		if !header {
			return errResult(t, codeInvalidArgument, 0, "valueType token is for headers only")
		}
	default:
		return errResult(t, codeInvalidArgument, 0, fmt.Sprintf("unknown valueType %q", cmd.ValueType))
	}
	if cmd.Name == "" {
		return errResult(t, codeInvalidArgument, 0, "empty name")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v := &dynValue{name: cmd.Name, kind: cmd.ValueType, token: cmd.InitialValue}
	if header {
		d.headers[http.CanonicalHeaderKey(cmd.Name)] = v
	} else {
		d.params[cmd.Name] = v
	}
	return result{Type: t, Success: true}
}

func (d *dynamic) clear() {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.headers)
	clear(d.params)
	d.sentH, d.sentP = nil, nil
}

// begin starts a command: nothing sent yet.
func (d *dynamic) begin() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sentH, d.sentP = nil, nil
}

// sent returns the dynamic values of the command's last request.
func (d *dynamic) sent() (h, p map[string]string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sentH, d.sentP
}

// headerFunc computes the dynamic headers for one request; a header the
// command sets itself wins.
func (d *dynamic) headerFunc(fixed map[string]string) func(context.Context) (http.Header, error) {
	skip := map[string]bool{}
	for k := range fixed {
		skip[http.CanonicalHeaderKey(k)] = true
	}
	return func(context.Context) (http.Header, error) {
		d.mu.Lock()
		defer d.mu.Unlock()
		if len(d.headers) == 0 {
			return nil, nil
		}
		h := http.Header{}
		sent := map[string]string{}
		for k, v := range d.headers {
			if skip[k] {
				continue
			}
			val := v.next()
			h.Set(k, val)
			sent[v.name] = val
		}
		d.sentH = sent
		return h, nil
	}
}

// queryFunc computes the dynamic query parameters for one request.
func (d *dynamic) queryFunc(context.Context) (url.Values, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.params) == 0 {
		return nil, nil
	}
	q := url.Values{}
	sent := map[string]string{}
	for k, v := range d.params {
		val := v.next()
		q.Set(k, val)
		sent[k] = val
	}
	d.sentP = sent
	return q, nil
}
