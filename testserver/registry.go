package testserver

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"time"
)

// RegistryPath is the path, relative to the prefix, of the stream in which a
// server started with WithRegistry(true) records stream lifecycle events.
const RegistryPath = "__registry__"

// WithRegistry makes the server keep a JSON stream at RegistryPath that
// records every stream created and deleted, one message per event, in the
// event format of the reference development server:
//
//	{"type":"created","path":"orders","contentType":"application/json","timestamp":1767225600000}
//	{"type":"deleted","path":"orders","timestamp":1767225660000}
//
// path is relative to the prefix and timestamp is in milliseconds since the
// Unix epoch (from the server's clock). A fork's created event also carries
// "forkedFrom" and "forkOffset", and "forkSubOffset" when it is not 0. A
// stream deleted while forks still read it (soft-deleted) counts as deleted;
// so does a stream whose TTL or expiry passed, when the server notices it
// (on the next request for it). An idempotent re-create records nothing.
//
// The registry is an ordinary stream that the server creates at start (its
// first event is its own creation): clients read it like any other, and if
// one deletes it the next event re-creates it. With WithDataDir a restarted
// server brings it up to date: it records the streams created or removed
// while it ran without the registry (or whose events a failed disk write
// lost). If a client re-creates RegistryPath as a closed or non-JSON stream,
// events are not recorded until it is deleted. Like the server's wake
// events, registry events wake no subscription (one whose pattern matches
// RegistryPath sees its tail move without a wake).
//
// Off by default; `durable serve` turns it on (--registry).
func WithRegistry(on bool) Option { return func(c *config) { c.registry = on } }

// registryEvent is one message of the registry stream.
type registryEvent struct {
	Type          string `json:"type"` // "created" or "deleted"
	Path          string `json:"path"`
	ContentType   string `json:"contentType,omitempty"`
	Timestamp     int64  `json:"timestamp"`
	ForkedFrom    string `json:"forkedFrom,omitempty"`
	ForkOffset    string `json:"forkOffset,omitempty"`
	ForkSubOffset int64  `json:"forkSubOffset,omitempty"`
}

const (
	registryCreated = "created"
	registryDeleted = "deleted"
)

// registryCreatedLocked records the creation of st. Caller holds s.mu.
func (s *Server) registryCreatedLocked(st *stream, now time.Time) {
	s.recordLocked(registryEvent{
		Type: registryCreated, Path: st.path, ContentType: st.contentType,
		Timestamp:  now.UnixMilli(),
		ForkedFrom: st.forkedFrom, ForkOffset: st.forkOffset, ForkSubOffset: st.forkSub,
	}, now)
}

// registryDeletedLocked records that the stream at path is gone. Caller
// holds s.mu.
func (s *Server) registryDeletedLocked(path string, now time.Time) {
	if path == RegistryPath {
		return // re-created with its next event
	}
	s.recordLocked(registryEvent{Type: registryDeleted, Path: path, Timestamp: now.UnixMilli()}, now)
}

// recordLocked appends ev to the registry stream, creating the stream if it
// is missing. A disk error is not reported: the triggering request already
// succeeded, and a restart on the data directory records what was lost.
// Caller holds s.mu.
func (s *Server) recordLocked(ev registryEvent, now time.Time) {
	if !s.cfg.registry {
		return
	}
	reg := s.ensureRegistryLocked(now)
	if reg == nil {
		return
	}
	msg, err := json.Marshal(ev)
	if err != nil {
		return
	}
	if _, commit, err := s.applyAppendLocked(reg, &appendReq{ct: reg.contentType, body: msg, msgs: [][]byte{msg}}); err == nil && commit != nil {
		_ = commit()
	}
}

const registryContentType = "application/json"

// ensureRegistryLocked returns the registry stream, creating it when it is
// missing (which records its own creation, re-entering recordLocked), or
// nil when events cannot be recorded in it. Caller holds s.mu.
func (s *Server) ensureRegistryLocked(now time.Time) *stream {
	reg := s.streams[RegistryPath]
	if reg == nil {
		if _, code, _ := s.createLocked(RegistryPath, &createReq{ct: registryContentType}, now); code != http.StatusCreated {
			return nil
		}
		reg = s.streams[RegistryPath]
	}
	if reg.softDeleted || reg.closed || !reg.isJSON || reg.expired(now) {
		return nil
	}
	return reg
}

// syncRegistryLocked creates the registry stream if it is missing and
// brings it up to date with the streams the server holds: a stream the
// registry does not list gets a created event, a listed stream the server
// no longer has gets a deleted event. It runs at start. Caller holds s.mu.
func (s *Server) syncRegistryLocked(now time.Time) {
	if !s.cfg.registry {
		return
	}
	// Expired streams go first, recording their deletion.
	for path := range s.streams {
		s.lookup(path, now)
	}
	reg := s.ensureRegistryLocked(now)
	if reg == nil {
		return
	}
	listed := map[string]bool{}
	var prev int64
	for _, end := range reg.bounds.all() {
		var ev registryEvent
		if json.Unmarshal(reg.data.slice(prev, end-1), &ev) == nil {
			switch ev.Type {
			case registryCreated:
				listed[ev.Path] = true
			case registryDeleted:
				delete(listed, ev.Path)
			}
		}
		prev = end
	}
	for _, path := range slices.Sorted(maps.Keys(s.streams)) {
		if st := s.streams[path]; !listed[path] && !st.softDeleted && path != RegistryPath {
			s.registryCreatedLocked(st, now)
		}
	}
	for _, path := range slices.Sorted(maps.Keys(listed)) {
		if st := s.streams[path]; st == nil || st.softDeleted {
			s.registryDeletedLocked(path, now)
		}
	}
}
