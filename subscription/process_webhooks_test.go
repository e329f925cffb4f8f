//go:build subprocess

package subscription

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/durablego/durable"
)

// TestProcessWebhooks: the Receiver against durable serve --subscriptions
// and the Node reference server (webhooks on): each server's signed
// deliveries verify, every message is handled once in order per stream
// and acked through callbacks, and a replayed or tampered delivery is
// refused without calling the handler.
func TestProcessWebhooks(t *testing.T) {
	e := needProcEnv(t)
	for _, sv := range procServers(true) {
		for _, async := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/async=%v", sv.name, async), func(t *testing.T) {
				runWebhookScenario(t, sv.start(t, e), async)
			})
		}
	}
}

func runWebhookScenario(t *testing.T, srv server, async bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := durable.NewClient(srv.base)
	require.NoError(t, err)
	defer c.CloseIdleConnections()
	rec := newRecorder()
	var calls atomic.Int64
	opts := []Option{WithConcurrency(4)}
	if async {
		opts = append(opts, WithAsync())
	}
	r, err := NewReceiver(c, func(ctx context.Context, m Message[item]) error {
		calls.Add(1)
		rec.add(m)
		return nil
	}, opts...)
	require.NoError(t, err)
	defer r.Close()
	tt, url := mount(t, r)

	id := fmt.Sprintf("hook-%d", time.Now().UnixNano())
	streams := make([]string, 5)
	for i := range streams {
		streams[i] = fmt.Sprintf("%s/s%d", id, i)
		_, err := c.Create(ctx, streams[i], durable.CreateOptions{ContentType: "application/json"})
		require.NoError(t, err)
	}
	sub, err := Open(c, id)
	require.NoError(t, err)
	_, _, err = sub.Create(ctx, Config{Type: Webhook, Pattern: id + "/*", WebhookURL: url, LeaseTTL: 5 * time.Second})
	require.NoError(t, err)
	tails := map[string]durable.Offset{}
	for seq := 1; seq <= 20; seq++ {
		for _, s := range streams {
			res, err := c.AppendJSON(ctx, s, item{Stream: s, Seq: seq}, durable.AppendOptions{})
			require.NoError(t, err)
			tails[s] = res.NextOffset
		}
	}
	rec.waitDistinct(t, streams, 20)
	require.Eventually(t, func() bool {
		info, err := sub.Get(ctx)
		if err != nil {
			return false
		}
		for _, l := range info.Links {
			if l.Acked != tails[l.Path] {
				return false
			}
		}
		return len(info.Links) == len(streams)
	}, 30*time.Second, 50*time.Millisecond, "not acked to the tails")
	rec.checkOrder(t)
	for _, s := range streams {
		require.Len(t, rec.seen[s], 20, "%s: each message once: %v", s, rec.seen[s])
	}

	d := tt.first()
	n := calls.Load()
	require.Equal(t, http.StatusUnauthorized, post(r, d), "replayed")
	tampered := delivery{header: d.header, body: append([]byte(nil), d.body...)}
	tampered.body[len(tampered.body)/2] ^= 0x20
	require.Equal(t, http.StatusUnauthorized, post(r, tampered), "tampered")
	require.Equal(t, n, calls.Load(), "the handler saw no refused delivery")
	require.NoError(t, r.Close())
	st := r.Stats()
	t.Logf("[%s, async=%v] %d messages handled in %d wakes, %d acks", srv.name, async, st.Handled, st.Wakes, st.Acks)
}

// TestProcessManagement: management and the low-level calls against both
// servers, every error code as its typed error.
func TestProcessManagement(t *testing.T) {
	e := needProcEnv(t)
	for _, sv := range procServers(true) {
		t.Run(sv.name, func(t *testing.T) { runManagement(t, sv.start(t, e)) })
	}
}

func runManagement(t *testing.T, srv server) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := durable.NewClient(srv.base)
	require.NoError(t, err)
	defer c.CloseIdleConnections()
	id := fmt.Sprintf("mgmt-%d", time.Now().UnixNano())
	for _, s := range []string{id + "/a", id + "/b", id + "-wake"} {
		_, err := c.Create(ctx, s, durable.CreateOptions{ContentType: "application/json"})
		require.NoError(t, err)
	}
	sub, err := Open(c, id)
	require.NoError(t, err)
	cfg := Config{Type: PullWake, Pattern: id + "/*", WakeStream: id + "-wake", LeaseTTL: 5 * time.Second, Description: "d"}
	info, created, err := sub.Create(ctx, cfg)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, PullWake, info.Type)
	require.Equal(t, 5*time.Second, info.LeaseTTL)
	require.Len(t, info.Links, 2)
	_, created, err = sub.Create(ctx, cfg)
	require.NoError(t, err)
	require.False(t, created)
	cfg.Description = "other"
	_, _, err = sub.Create(ctx, cfg)
	require.ErrorIs(t, err, ErrConfigConflict)

	require.NoError(t, sub.AddStreams(ctx, "extra/x"))
	got, err := sub.Get(ctx)
	require.NoError(t, err)
	l, ok := got.Link("extra/x")
	require.True(t, ok)
	require.Equal(t, LinkExplicit, l.LinkType)
	require.NoError(t, sub.RemoveStream(ctx, "extra/x"))

	_, err = sub.Claim(ctx, "w1")
	require.ErrorIs(t, err, ErrNoPendingWork)
	res, err := c.AppendJSON(ctx, id+"/a", item{Seq: 1}, durable.AppendOptions{})
	require.NoError(t, err)
	w, err := sub.Claim(ctx, "w1")
	require.NoError(t, err)
	_, err = sub.Claim(ctx, "w2")
	require.ErrorIs(t, err, ErrAlreadyClaimed)
	forged := *w
	forged.Token = NewToken("forged." + w.Token.Reveal())
	require.ErrorIs(t, sub.Heartbeat(ctx, &forged), ErrTokenInvalid)
	_, err = sub.Ack(ctx, w, false, Ack{Stream: id + "/a", Offset: res.NextOffset + "9"})
	require.ErrorIs(t, err, ErrInvalidOffset)
	require.NoError(t, sub.Heartbeat(ctx, w))
	_, err = sub.Ack(ctx, w, true, Ack{Stream: id + "/a", Offset: res.NextOffset})
	require.NoError(t, err)
	_, err = sub.Ack(ctx, w, false)
	require.ErrorIs(t, err, ErrFenced)
	got, err = sub.Get(ctx)
	require.NoError(t, err)
	l, _ = got.Link(id + "/a")
	require.Equal(t, res.NextOffset, l.Acked)

	hook, err := Open(c, id+"-hook")
	require.NoError(t, err)
	_, _, err = hook.Create(ctx, Config{Type: Webhook, Pattern: id + "/*", WebhookURL: "http://10.1.2.3/hook"})
	require.ErrorIs(t, err, ErrWebhookURLRejected)

	require.NoError(t, sub.Delete(ctx))
	_, err = sub.Get(ctx)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = sub.Claim(ctx, "w1")
	require.ErrorIs(t, err, ErrNotFound)
}
