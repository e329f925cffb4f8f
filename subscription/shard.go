package subscription

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/durablego/durable"
)

// Sharding spreads the streams under a prefix over N subscriptions, so
// that N workers (in one process or several) can work them at once: one
// subscription has one lease, so one active worker, however many
// processes run.
//
// Streams are named Prefix/<shard>/<key>, where <shard> is the decimal
// Shard(key); subscription ID-<i> has the pattern Prefix/<i>/** and
// therefore links exactly the streams of shard i. A Worker with
// WithShards(N) works all of them, holding the lease of any shard that
// no other worker holds.
type Sharding struct {
	// ID is the base id: the shards are ID-0 … ID-(N-1).
	ID string
	// Prefix is the stream path prefix (for example "orders"); streams are
	// Prefix/<shard>/<key>.
	Prefix string
	// N is the number of shards.
	N int
}

// IDs returns the shards' subscription ids.
func (s Sharding) IDs() []string {
	ids := make([]string, s.N)
	for i := range ids {
		ids[i] = s.ID + "-" + strconv.Itoa(i)
	}
	return ids
}

// Shard returns the shard of key: FNV-1a of the key, modulo N.
func (s Sharding) Shard(key string) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(max(s.N, 1)))
}

// Stream returns the path of key's stream: Prefix/<Shard(key)>/key.
func (s Sharding) Stream(key string) string {
	return strings.TrimSuffix(s.Prefix, "/") + "/" + strconv.Itoa(s.Shard(key)) + "/" + key
}

// Pattern returns shard i's pattern: Prefix/<i>/**.
func (s Sharding) Pattern(i int) string {
	return strings.TrimSuffix(s.Prefix, "/") + "/" + strconv.Itoa(i) + "/**"
}

func (s Sharding) validate() error {
	if s.N < 1 || s.Prefix == "" || s.ID == "" {
		return fmt.Errorf("%w: Sharding needs an ID, a Prefix and N ≥ 1", durable.ErrInvalidArgument)
	}
	return nil
}

// Create creates (or re-confirms) every shard with cfg, whose Pattern
// must be empty: each shard gets its own. All shards may share one wake
// stream (wake events name their subscription).
func (s Sharding) Create(ctx context.Context, c *durable.Client, cfg Config) error {
	if err := s.validate(); err != nil {
		return err
	}
	if cfg.Pattern != "" {
		return fmt.Errorf("%w: Sharding.Create sets each shard's Pattern; cfg.Pattern must be empty", durable.ErrInvalidArgument)
	}
	for i, id := range s.IDs() {
		sub, err := Open(c, id)
		if err != nil {
			return err
		}
		shard := cfg
		shard.Pattern = s.Pattern(i)
		if _, _, err := sub.Create(ctx, shard); err != nil {
			return err
		}
	}
	return nil
}

// Delete deletes every shard.
func (s Sharding) Delete(ctx context.Context, c *durable.Client) error {
	if err := s.validate(); err != nil {
		return err
	}
	var errs []error
	for _, id := range s.IDs() {
		sub, err := Open(c, id)
		if err == nil {
			err = sub.Delete(ctx)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
