package testserver

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Subscriptions in a data directory:
//
//	<dir>/subscriptions/keys.json          signing keys and the token key (mode 0600)
//	<dir>/subscriptions/sub-<sha256 id>.json  one subscription: configuration, links with
//	                                       acked offsets, generation, wake, lease, retries
//
// Every file is replaced atomically (temp, fsync, rename, fsync dir), and
// a change is on disk before the request that made it is answered, so an
// acknowledged ack survives a killed process. A corrupt file or one of an
// unknown version stops the server from starting; it is never silently
// replaced.

const subsVersion = 1

type subFile struct {
	Version      int           `json:"version"`
	Subscription *subscription `json:"subscription"`
}

type keysFile struct {
	Version int      `json:"version"`
	Ring    *keyRing `json:"ring"`
}

// subFileName names a subscription's file by the SHA-256 of its id: any
// id (up to 256 bytes, any characters) makes a short, safe file name; the
// file holds the id itself.
func subFileName(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "sub-" + hex.EncodeToString(sum[:]) + ".json"
}

// load reads the subscriptions and keys of the data directory, or makes
// new keys in memory mode or for a new directory.
func (m *subManager) load() error {
	now := m.s.cfg.clock()
	if m.s.disk == nil {
		m.keys = newKeyRing(now)
		return nil
	}
	m.dir = filepath.Join(m.s.cfg.dataDir, "subscriptions")
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return err
	}
	if err := m.loadKeys(now); err != nil {
		return err
	}
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".tmp"):
			_ = os.Remove(filepath.Join(m.dir, name)) // an interrupted replace: the old file stands
		case strings.HasPrefix(name, "sub-") && strings.HasSuffix(name, ".json"):
			sub, err := readSubFile(filepath.Join(m.dir, name))
			if err != nil {
				return err
			}
			if subFileName(sub.ID) != name {
				return fmt.Errorf("%s holds subscription %q", name, sub.ID)
			}
			m.subs[sub.ID] = sub
		}
	}
	return nil
}

func readSubFile(path string) (*subscription, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f subFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("corrupt %s: %w", path, err)
	}
	if f.Version != subsVersion || f.Subscription == nil {
		return nil, fmt.Errorf("%s: unknown version %d", path, f.Version)
	}
	sub := f.Subscription
	if sub.Links == nil {
		sub.Links = map[string]*subLink{}
	}
	return sub, nil
}

// loadKeys reads keys.json, or makes and stores a new key ring.
func (m *subManager) loadKeys(now time.Time) error {
	path := filepath.Join(m.dir, "keys.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		ring := newKeyRing(now)
		if err := m.storeKeys(ring); err != nil {
			return err
		}
		m.keys = ring
		return nil
	}
	if err != nil {
		return err
	}
	var f keysFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("corrupt %s: %w", path, err)
	}
	if f.Version != subsVersion || f.Ring == nil || len(f.Ring.Keys) == 0 || len(f.Ring.TokenKey) < 32 {
		return fmt.Errorf("%s: unknown version %d or no keys", path, f.Version)
	}
	for _, k := range f.Ring.Keys {
		if len(k.Seed) != ed25519.SeedSize {
			return fmt.Errorf("%s: bad key seed", path)
		}
		k.init()
	}
	m.keys = f.Ring
	return nil
}

// storeKeys writes the key ring (memory mode: nothing). Caller holds m.mu
// or is loading.
func (m *subManager) storeKeys(ring *keyRing) error {
	if m.dir == "" {
		return nil
	}
	b, err := json.Marshal(keysFile{Version: subsVersion, Ring: ring})
	if err != nil {
		return err
	}
	return writeFileAtomic(m.s.disk, m.dir, "keys.json", b, 0o600)
}

// persistLocked writes sub's file (memory mode: nothing). Caller holds m.mu.
func (m *subManager) persistLocked(sub *subscription) error {
	if m.dir == "" {
		return nil
	}
	b, err := json.Marshal(subFile{Version: subsVersion, Subscription: sub})
	if err != nil {
		return err
	}
	return writeFileAtomic(m.s.disk, m.dir, subFileName(sub.ID), b, 0o600)
}

// unstoreLocked removes a deleted subscription's file. Caller holds m.mu.
func (m *subManager) unstoreLocked(id string) error {
	if m.dir == "" {
		return nil
	}
	if err := os.Remove(filepath.Join(m.dir, subFileName(id))); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return m.s.disk.syncDir(m.dir)
}
