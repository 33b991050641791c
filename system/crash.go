package system

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// CrashEnv names the failpoint the crash-resume tests use: "STEP:N" makes the process SIGKILL itself right
// after the N-th state-changing operation (write, remove, mkdir, command, iptables or API call) of that step's
// apply has been journaled, i.e. in the middle of the step, the way a lost SSH session or an OOM kill would
// stop it. It is honoured only together with OPENCLAW_HARDEN_LAB=1, so it cannot fire by accident.
const CrashEnv = "OPENCLAW_HARDEN_TEST_CRASH_AFTER"

type crashPoint struct{ step, after int }

// parseCrashPoint reads CrashEnv; nil when unset or not in the lab.
func parseCrashPoint(getenv func(string) string) (*crashPoint, error) {
	v := getenv(CrashEnv)
	if v == "" || getenv("OPENCLAW_HARDEN_LAB") != "1" {
		return nil, nil
	}
	a, b, ok := strings.Cut(v, ":")
	step, err1 := strconv.Atoi(a)
	after, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || step < 0 || after < 1 {
		return nil, fmt.Errorf("%s=%q: want STEP:N, e.g. 5:1 (kill after the first change of Step 5)", CrashEnv, v)
	}
	return &crashPoint{step: step, after: after}, nil
}

// ArmCrashPoint reads the failpoint from the environment (see CrashEnv).
func (h *Host) ArmCrashPoint() error {
	cp, err := parseCrashPoint(h.getenv)
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.crash = cp
	h.mu.Unlock()
	return nil
}

// countsAsChange: journal lines of operations that change the machine (state.json bookkeeping aside).
func (h *Host) countsAsChange(line string) bool {
	for _, p := range []string{"write: ", "remove: ", "mkdir: ", "run: ", "api: "} {
		if rest, ok := strings.CutPrefix(line, p); ok {
			target, _, _ := strings.Cut(rest, " ")
			return h.StateDir == "" || !strings.HasPrefix(target, h.StateDir)
		}
	}
	return false
}

func (h *Host) maybeCrash(step int, line string) {
	h.mu.Lock()
	cp := h.crash
	if cp == nil || step != cp.step || !h.countsAsChange(line) {
		h.mu.Unlock()
		return
	}
	h.changes++
	n := h.changes
	h.mu.Unlock()
	if n == cp.after {
		fmt.Fprintf(os.Stderr, "%s: killing this process (SIGKILL) after change %d of step %d: %s\n", CrashEnv, n, step, line)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way; never run the next change
	}
}
