package subscription

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durablego/durable"
)

func TestCreateGetDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t)
	e.createJSON(t, "orders/a", "wake/orders")
	e.appendJSON(t, "orders/a", map[string]int{"n": 1})
	s, err := Open(e.c, "orders-proc")
	require.NoError(t, err)
	cfg := Config{Type: PullWake, Pattern: "orders/*", Streams: []string{"extra/x"}, WakeStream: "wake/orders",
		LeaseTTL: 5 * time.Second, Description: "order processor"}

	info, created, err := s.Create(ctx, cfg)
	require.NoError(t, err)
	assert.True(t, created)
	assert.Equal(t, "orders-proc", info.ID)
	assert.Equal(t, PullWake, info.Type)
	assert.Equal(t, "orders/*", info.Pattern)
	assert.Equal(t, "wake/orders", info.WakeStream)
	assert.Equal(t, 5*time.Second, info.LeaseTTL)
	assert.Equal(t, "order processor", info.Description)
	assert.Equal(t, StatusActive, info.Status)
	assert.False(t, info.CreatedAt.IsZero())
	a, ok := info.Link("orders/a")
	require.True(t, ok, "existing matching stream linked: %+v", info.Links)
	assert.Equal(t, LinkGlob, a.LinkType)
	tail, err := e.c.Head(ctx, "orders/a")
	require.NoError(t, err)
	assert.Equal(t, tail.NextOffset, a.Acked, "linked at its tail: no replay of history")
	x, ok := info.Link("extra/x")
	require.True(t, ok)
	assert.Equal(t, LinkExplicit, x.LinkType)

	// Re-confirm: same configuration 200, another one 409.
	_, created, err = s.Create(ctx, cfg)
	require.NoError(t, err)
	assert.False(t, created)
	other := cfg
	other.Description = "changed"
	_, _, err = s.Create(ctx, other)
	var se *Error
	require.ErrorAs(t, err, &se)
	assert.ErrorIs(t, err, ErrConfigConflict)
	assert.Equal(t, http.StatusConflict, se.Status)
	assert.Equal(t, "SUBSCRIPTION_ALREADY_EXISTS", se.Code)
	assert.Equal(t, "create", se.Op)
	assert.Equal(t, "orders-proc", se.Subscription)

	got, err := s.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, info.Links, got.Links)

	require.NoError(t, s.Delete(ctx))
	require.NoError(t, s.Delete(ctx), "deleting twice is not an error")
	_, err = s.Get(ctx)
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusNotFound, se.Status)
	assert.Equal(t, `subscription get "orders-proc": subscription not found (HTTP 404)`, err.Error())
}

func TestAddRemoveStreams(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t)
	e.createJSON(t, "ev/a", "ev/b", "other/c")
	s := e.pullWake(t, "ev/*", 0)

	require.NoError(t, s.AddStreams(ctx, "other/c", "ev/a"))
	require.NoError(t, s.AddStreams(ctx, "other/c"), "adding again changes nothing")
	info, err := s.Get(ctx)
	require.NoError(t, err)
	types := map[string]LinkType{}
	for _, l := range info.Links {
		types[l.Path] = l.LinkType
	}
	assert.Equal(t, map[string]LinkType{"ev/a": LinkExplicit, "ev/b": LinkGlob, "other/c": LinkExplicit}, types)

	require.NoError(t, s.RemoveStream(ctx, "other/c"))
	require.NoError(t, s.RemoveStream(ctx, "ev/a"), "the glob link stays")
	require.NoError(t, s.RemoveStream(ctx, "never/linked"))
	info, err = s.Get(ctx)
	require.NoError(t, err)
	types = map[string]LinkType{}
	for _, l := range info.Links {
		types[l.Path] = l.LinkType
	}
	assert.Equal(t, map[string]LinkType{"ev/a": LinkGlob, "ev/b": LinkGlob}, types)

	gone, err := Open(e.c, "no-such-sub")
	require.NoError(t, err)
	err = gone.AddStreams(ctx, "ev/a")
	require.ErrorIs(t, err, ErrNotFound)
	var se *Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "add streams", se.Op)
	err = gone.RemoveStream(ctx, "ev/a")
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "ev/a", se.Stream)
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestCreateRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t)
	s, err := Open(e.c, "bad")
	require.NoError(t, err)

	// Checked before sending.
	for _, cfg := range []Config{
		{Type: "push", Pattern: "a/*"},
		{Type: PullWake, Pattern: "a/*"},
		{Type: PullWake, WakeStream: "w"},
		{Type: PullWake, Pattern: "a/*", WakeStream: "w", LeaseTTL: 999 * time.Millisecond},
		{Type: PullWake, Pattern: "a/*", WakeStream: "w", LeaseTTL: 11 * time.Minute},
		{Type: Webhook, Pattern: "a/*"},
		{Type: Webhook, Pattern: "a/*", WebhookURL: "https://example.com/h", WakeStream: "w"},
	} {
		_, _, err := s.Create(ctx, cfg)
		require.ErrorIs(t, err, durable.ErrInvalidArgument, "%+v", cfg)
	}

	// Refused by the server.
	_, _, err = s.Create(ctx, Config{Type: Webhook, Pattern: "a/*", WebhookURL: "http://10.0.0.1/hook"})
	require.ErrorIs(t, err, ErrWebhookURLRejected)
	_, _, err = s.Create(ctx, Config{Type: PullWake, Pattern: "../*", WakeStream: "w"})
	require.ErrorIs(t, err, ErrInvalidRequest)
	var se *Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusBadRequest, se.Status)
	assert.NotEmpty(t, se.Message)
}

func TestOpenChecksID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, id := range []string{"", "a/b", "a?b", "a#b", "a%2F", "..", "tab\there", string(make([]byte, 257))} {
		_, err := Open(e.c, id)
		require.ErrorIs(t, err, durable.ErrInvalidArgument, "%q", id)
	}
	_, err := Open(nil, "x")
	require.ErrorIs(t, err, durable.ErrInvalidArgument)
	s, err := Open(e.c, "ok-id.1_2")
	require.NoError(t, err)
	assert.Equal(t, "ok-id.1_2", s.ID())
}

// TestErrorCodes maps every code of the protocol to its sentinel, with
// the details the server sends; an answer without a code keeps the
// Client's error (and its sentinel).
func TestErrorCodes(t *testing.T) {
	t.Parallel()
	for code, want := range codes {
		r := &request{op: "ack", sub: "s"}
		e := r.refine(&durable.Error{Op: "subscription ack", URL: "http://h/x", Status: http.StatusConflict,
			Message: `{"error":{"code":"` + code + `","message":"m","current_holder":"w2","generation":7}}`, Err: durable.ErrStatus})
		assert.ErrorIs(t, e, want, code)
		assert.Equal(t, code, e.Code)
		assert.Equal(t, "w2", e.Holder)
		assert.EqualValues(t, 7, e.Generation)
		assert.Equal(t, "http://h/x", e.URL)
		assert.Equal(t, fmt.Sprintf(`subscription ack "s": %s by "w2" (generation 7) (HTTP 409): m`, want), e.Error())
	}
	r := &request{op: "get", sub: "s"}
	e := r.refine(&durable.Error{Op: "subscription get", Status: 503, Message: "busy", Err: durable.ErrServer})
	assert.ErrorIs(t, e, durable.ErrServer)
	assert.Equal(t, 503, e.Status)
	assert.Equal(t, `subscription get "s": server error (HTTP 503): busy`, e.Error())
	e = r.refine(&durable.Error{Op: "subscription get", Status: 404, Message: `{"error":{"code":"NOT_FOUND"}}`, Err: durable.ErrNotFound})
	assert.ErrorIs(t, e, durable.ErrNotFound, "an unknown code keeps the Client's sentinel")
	assert.Equal(t, "NOT_FOUND", e.Code)
}
