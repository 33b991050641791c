package steps

import (
	"context"
	"testing"

	"openclaw-harden/system"
)

// Without a LAN host nothing is proven from the LAN: the check must say "not run" and be marked skipped, so
// no output shows it as passed.
func TestLANNotRunIsSkippedNotPassed(t *testing.T) {
	h := system.NewFakeHost(t.TempDir(), t.TempDir(), system.NewFakeRunner(nil), false)
	cs := lanChecks(context.Background(), h, Defaults())
	if len(cs) != 1 || !cs[0].Skipped || cs[0].ID != "step8.lan.not-run" || cs[0].Reason == "" {
		t.Fatalf("lan checks without a LAN host: %+v", cs)
	}
}
