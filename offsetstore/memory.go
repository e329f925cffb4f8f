package offsetstore

import (
	"context"
	"sync"
)

// Memory is a [Store] and [EpochStore] held in process memory. It is safe for
// concurrent use and loses everything when the process exits. The zero value
// is not usable; call [NewMemory].
type Memory struct {
	mu        sync.RWMutex
	positions map[string]Position
	epochs    map[string]int64
}

// NewMemory returns an empty Memory store.
func NewMemory() *Memory {
	return &Memory{positions: make(map[string]Position), epochs: make(map[string]int64)}
}

// Load returns the position saved under key. It fails only on an invalid key
// or a done ctx.
func (m *Memory) Load(ctx context.Context, key string) (Position, bool, error) {
	if err := ValidateKey("key", key); err != nil {
		return Position{}, false, err
	}
	if err := ctx.Err(); err != nil {
		return Position{}, false, err
	}
	m.mu.RLock()
	pos, ok := m.positions[key]
	m.mu.RUnlock()
	return pos, ok, nil
}

// Save records pos under key, replacing any earlier position. It validates
// its arguments exactly as [File.Save] does.
func (m *Memory) Save(ctx context.Context, key string, pos Position) error {
	if err := ValidateKey("key", key); err != nil {
		return err
	}
	if err := ValidatePosition(pos); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	m.positions[key] = pos
	m.mu.Unlock()
	return nil
}

// LoadEpoch returns the epoch saved for producerID.
func (m *Memory) LoadEpoch(ctx context.Context, producerID string) (int64, bool, error) {
	if err := ValidateKey("producer ID", producerID); err != nil {
		return 0, false, err
	}
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	m.mu.RLock()
	e, ok := m.epochs[producerID]
	m.mu.RUnlock()
	return e, ok, nil
}

// SaveEpoch records epoch for producerID, replacing any earlier epoch.
func (m *Memory) SaveEpoch(ctx context.Context, producerID string, epoch int64) error {
	if err := ValidateKey("producer ID", producerID); err != nil {
		return err
	}
	if err := validateEpoch(epoch); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	m.epochs[producerID] = epoch
	m.mu.Unlock()
	return nil
}
