package system

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestLockExcludesASecondRun(t *testing.T) {
	h := NewFakeHost(t.TempDir(), t.TempDir(), NewFakeRunner(nil), false)
	release, err := h.Lock()
	if err != nil {
		t.Fatal(err)
	}
	if !h.Busy() {
		t.Error("Busy is false while the lock is held")
	}
	// A second run (another open file description, as another process has) is refused, naming the holder.
	h2 := NewFakeHost(h.Root, h.StateDir, NewFakeRunner(nil), false)
	if _, err := h2.Lock(); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second lock: %v", err)
	}
	release()
	if h.Busy() {
		t.Error("Busy after release")
	}
	r2, err := h2.Lock()
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	r2()
	// A dry run takes no lock and is never refused.
	d := NewFakeHost(h.Root, h.StateDir, NewFakeRunner(nil), true)
	if r, err := d.Lock(); err != nil {
		t.Fatal(err)
	} else {
		r()
	}
}
