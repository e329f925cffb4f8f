package offsetstore

import "sync"

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
		return nil, ErrLocked
	}
	openPaths[path] = true
	return func() {
		openMu.Lock()
		delete(openPaths, path)
		openMu.Unlock()
	}, nil
}
