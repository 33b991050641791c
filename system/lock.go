package system

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrBusy is returned by Lock when another run holds the state directory's lock.
var ErrBusy = errors.New("another openclaw-harden run holds the lock")

// Lock takes the state directory's lock for a run that changes the machine (apply, rollback, the wizard),
// so two runs cannot interleave their changes and overwrite each other's state.json. It does not wait for
// another run: a lock held for more than two seconds is an error naming the holder's pid. The kernel drops the lock when the process dies, SIGKILL included,
// so a crashed run never leaves it behind. A dry run takes no lock (it writes nothing).
func (h *Host) Lock() (release func(), err error) {
	if h.DryRun {
		return func() {}, nil
	}
	if err := os.MkdirAll(h.StateDir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(h.StateDir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	// A few tries over two seconds: a verify checking Busy holds the lock for an instant only.
	for i := 0; i < 20; i++ {
		if err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		pid, _ := os.ReadFile(path)
		f.Close()
		holder := strings.TrimSpace(string(pid))
		if holder == "" {
			holder = "unknown"
		}
		return nil, fmt.Errorf("%w (pid %s, lock %s): wait for it to finish, or stop it, then run again", ErrBusy, holder, path)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}

// Busy reports whether another run holds the lock now (verify uses it to leave state.json alone). It holds
// the lock for an instant at most, which Lock's retries absorb.
func (h *Host) Busy() bool {
	if h.DryRun {
		return false
	}
	f, err := os.OpenFile(filepath.Join(h.StateDir, "lock"), os.O_RDWR, 0)
	if err != nil {
		return false // no lock file: no run has ever held it
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return true
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

// flockTimeout takes an exclusive flock on fd, trying for up to d (the holders of the state directory's
// lock keep it for milliseconds).
func flockTimeout(fd int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil || !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func unlockFD(fd int) { _ = unix.Flock(fd, unix.LOCK_UN) }
