package system

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestParseCrashPoint(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		v, lab string
		want   *crashPoint
		err    string
	}{
		{"", "1", nil, ""},
		{"5:2", "", nil, ""}, // outside the lab it never fires
		{"5:2", "1", &crashPoint{5, 2}, ""},
		{"5", "1", nil, "want STEP:N"},
		{"5:0", "1", nil, "want STEP:N"},
		{"x:1", "1", nil, "want STEP:N"},
	} {
		got, err := parseCrashPoint(env(map[string]string{CrashEnv: tc.v, "OPENCLAW_HARDEN_LAB": tc.lab}))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.v, err, tc.err)
			}
			continue
		}
		if err != nil || (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
			t.Errorf("%q lab=%q: %+v %v, want %+v", tc.v, tc.lab, got, err, tc.want)
		}
	}
}

// TestCrashPointKills runs itself as a child that writes three files in step 5 with the failpoint at the
// second change: the child must die by SIGKILL with the first two files whole and the third never written.
func TestCrashPointKills(t *testing.T) {
	if dir := os.Getenv("OCH_CRASH_CHILD"); dir != "" {
		h := NewFakeHost(dir, filepath.Join(dir, "state"), NewFakeRunner(nil), false)
		h.Env = os.Getenv
		if err := h.ArmCrashPoint(); err != nil {
			t.Fatal(err)
		}
		h.SetStep(5)
		h.SaveState("state.json", []byte("{}\n")) // bookkeeping does not count
		for _, n := range []string{"a", "b", "c"} {
			if err := h.WriteFile(context.Background(), "/etc/"+n, []byte(strings.Repeat(n, 4096)), WriteOpts{}); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashPointKills$")
	cmd.Env = append(os.Environ(), "OCH_CRASH_CHILD="+dir, CrashEnv+"=5:2", "OPENCLAW_HARDEN_LAB=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("the child was not killed: %v\n%s", err, out)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the child ended with %v, want SIGKILL\n%s", err, out)
	}
	for _, n := range []string{"a", "b"} {
		if b, err := os.ReadFile(filepath.Join(dir, "etc", n)); err != nil || len(b) != 4096 {
			t.Errorf("/etc/%s: %d bytes, %v; want whole", n, len(b), err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "etc", "c")); !os.IsNotExist(err) {
		t.Errorf("/etc/c exists: the process went on after the failpoint")
	}
	if !strings.Contains(string(out), "after change 2 of step 5") {
		t.Errorf("the child did not say why it died:\n%s", out)
	}
}
