package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"openclaw-harden/system"
)

// Two runs that change the machine cannot overlap: while one holds the state dir's lock, apply and rollback
// refuse (exit 2, one sentence naming the holder) and verify runs without touching state.json.
func TestASecondRunIsRefusedWhileOneHoldsTheLock(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("apply and rollback need root")
	}
	dir := t.TempDir()
	ans := filepath.Join(dir, "a.yaml")
	os.WriteFile(ans, []byte("admin_source: 192.168.1.50\n"), 0o600)
	holder := system.NewHost(dir, false)
	release, err := holder.Lock()
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"apply", "--answers", ans, "--yes", "--step", "1", "--state-dir", dir},
		{"rollback", "--yes", "--state-dir", dir},
	} {
		code, out, errs := runCLI(t, args...)
		if code != 2 || !strings.Contains(errs, "another openclaw-harden run holds the lock (pid ") || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("%s while locked: exit %d\n%s\n%s", args[0], code, out, errs)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "state.json")); err == nil {
		t.Error("a refused run wrote state.json")
	}
	_, _, errs := runCLI(t, "verify", "--step", "1", "--state-dir", dir)
	if !strings.Contains(errs, "without recording the results in state.json") {
		t.Errorf("verify while locked did not say it leaves state.json alone: %s", errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "state.json")); err == nil {
		t.Error("verify wrote state.json while another run held the lock")
	}
	release()
	if code, out, errs := runCLI(t, "apply", "--answers", ans, "--yes", "--step", "1", "--state-dir", dir); code != 0 {
		t.Errorf("apply after the lock was released: exit %d\n%s\n%s", code, out, errs)
	}
}
