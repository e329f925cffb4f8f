//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package offsetstore

// lockPath on platforms without flock detects only a second open within this
// process.
func lockPath(path string) (unlock func() error, err error) {
	release, err := lockInProcess(path)
	if err != nil {
		return nil, err
	}
	return func() error { release(); return nil }, nil
}

// syncDir is a no-op where directories cannot be fsynced portably; the
// rename is still atomic.
func syncDir(string) error { return nil }
