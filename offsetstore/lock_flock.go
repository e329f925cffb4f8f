//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package offsetstore

import (
	"errors"
	"os"
	"syscall"
)

// lockPath takes an exclusive, non-blocking flock(2) on path+".lock". flock
// locks belong to the open file description, so a second open in the same
// process conflicts too; the kernel drops the lock when the process dies.
func lockPath(path string) (unlock func() error, err error) {
	release, err := lockInProcess(path)
	if err != nil {
		return nil, err
	}
	lf, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		release()
		return nil, err
	}
	for {
		err = syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		var rec [holderMax]byte
		n, _ := lf.ReadAt(rec[:], 0)
		_ = lf.Close()
		release()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, lockedBy(rec[:n])
		}
		return nil, err
	}
	// Say who holds the lock, for the message of the next one refused.
	// Best effort: the lock itself is the flock, not this record.
	if lf.Truncate(0) == nil {
		_, _ = lf.WriteAt(holderRecord(), 0)
	}
	return func() error {
		// Unlock explicitly before closing: a child process forked by
		// another goroutine shares the open file description until its
		// exec, and closing only our descriptor would leave the lock held
		// by that copy for a moment (a reopen would then see ErrLocked).
		uerr := syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
		err := lf.Close()
		release()
		return errors.Join(uerr, err)
	}, nil
}

// syncDir fsyncs a directory so that a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
