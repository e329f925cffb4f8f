package durable

import (
	"context"
	"sync"
)

// memStore is a Store and EpochStore in memory for this package's tests,
// which cannot import offsetstore (it imports this package).
type memStore struct {
	mu        sync.Mutex
	positions map[string]Position
	epochs    map[string]int64
}

func newMemStore() *memStore {
	return &memStore{positions: map[string]Position{}, epochs: map[string]int64{}}
}

func (m *memStore) Load(ctx context.Context, key string) (Position, bool, error) {
	if err := ctx.Err(); err != nil {
		return Position{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.positions[key]
	return p, ok, nil
}

func (m *memStore) Save(ctx context.Context, key string, pos Position) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.positions[key] = pos
	return nil
}

func (m *memStore) LoadEpoch(ctx context.Context, id string) (int64, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.epochs[id]
	return e, ok, nil
}

func (m *memStore) SaveEpoch(ctx context.Context, id string, epoch int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.epochs[id] = epoch
	return nil
}
