//go:build !unix

package testserver

import (
	"os"
	"path/filepath"
)

// lockDir opens dir/LOCK; on this platform no cross-process lock is taken.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
}
