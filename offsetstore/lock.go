package offsetstore

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

var (
	openMu    sync.Mutex
	openPaths = map[string]bool{}
)

// lockInProcess records that an absolute path is open in this process, so a
// second OpenFile of it fails with ErrLocked on every platform.
func lockInProcess(path string) (release func(), err error) {
	openMu.Lock()
	defer openMu.Unlock()
	if openPaths[path] {
		return nil, fmt.Errorf("%w by another File in this process (pid %d)", ErrLocked, os.Getpid())
	}
	openPaths[path] = true
	return func() {
		openMu.Lock()
		delete(openPaths, path)
		openMu.Unlock()
	}, nil
}

// holderMax bounds the holder record read from a lock file.
const holderMax = 512

// holderRecord is what a process writes into the lock file it holds: its
// process ID, host name and the time it took the lock, one "name=value"
// field per line.
func holderRecord() []byte {
	host, _ := os.Hostname()
	return fmt.Appendf(nil, "pid=%d\nhost=%s\nsince=%s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
}

// lockedBy returns ErrLocked naming the holder described by rec (a holder
// record), or "another process" when rec says nothing usable.
func lockedBy(rec []byte) error {
	var pid, host, since string
	for _, line := range strings.Split(string(rec), "\n") {
		k, v, _ := strings.Cut(line, "=")
		v = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return -1
			}
			return r
		}, v)
		switch k {
		case "pid":
			if _, err := strconv.Atoi(v); err == nil {
				pid = v
			}
		case "host":
			host = v
		case "since":
			if _, err := time.Parse(time.RFC3339, v); err == nil {
				since = v
			}
		}
	}
	if pid == "" {
		return fmt.Errorf("%w by another process", ErrLocked)
	}
	who := "process " + pid
	if host != "" {
		who += " on host " + host
	}
	if since != "" {
		who += " since " + since
	}
	return fmt.Errorf("%w by %s", ErrLocked, who)
}
