package steps

import (
	"context"
	"testing"

	"openclaw-harden/system"
)

// reloadStep is a fileStep whose file only takes effect after a reload, like sshd's drop-in or openclaw.json.
type reloadStep struct {
	fileStep
	reloads *int
}

func (r reloadStep) Reload(ctx context.Context, h *system.Host) error {
	*r.reloads++
	_, err := h.Exec(ctx, "systemctl", "reload", "fake")
	return err
}

// A crash between writing the file and reloading leaves the file as wanted: the re-plan must still offer (and
// the apply carry out) the reload, or the running service keeps the old settings behind a "No changes".
func TestInterruptedStepIsReloaded(t *testing.T) {
	h := system.NewFakeHost(t.TempDir(), t.TempDir(), system.NewFakeRunner(map[string]string{"systemctl reload fake": ""}), false)
	ctx := context.Background()
	var reloads int
	crashing := reloadStep{fileStep{id: 0, path: "/etc/a.conf", content: "a\n", crash: true}, &reloads}
	s := NewSession(h, Defaults(), nil)
	s.Steps = []Step{crashing}
	p, _ := s.Plan(ctx, crashing)
	func() {
		defer func() { recover() }()
		s.Apply(ctx, crashing, p)
	}()

	st, err := LoadState(h)
	if err != nil {
		t.Fatal(err)
	}
	step := crashing
	step.crash = false
	s2 := NewSession(h, *st.Answers, st)
	s2.Steps = []Step{step}
	if pr, _ := s2.PlanReadOnly(ctx, step); pr.Empty() {
		t.Fatalf("the read-only plan (the plan command) of an interrupted step does not offer the reload")
	}
	p2, err := s2.Plan(ctx, step)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Empty() {
		t.Fatalf("the re-plan of an interrupted step with a reload is empty: %+v", p2.Changes)
	}
	if err := s2.Apply(ctx, step, p2); err != nil {
		t.Fatal(err)
	}
	if reloads != 1 {
		t.Fatalf("reloads = %d, want 1", reloads)
	}
	if got := s2.Status(0).Status; got != StatusApplied {
		t.Fatalf("status after finishing = %s", got)
	}
	// Once finished, the next plan is empty again: the reload is not offered forever.
	if p3, _ := s2.Plan(ctx, step); !p3.Empty() {
		t.Fatalf("after finishing, the plan is not empty: %+v", p3.Pending())
	}
	if reloads != 1 {
		t.Fatalf("planning reloaded: %d", reloads)
	}

	// A step without a reload is just re-planned (its plan compares files, which is enough).
	plain := fileStep{id: 1, path: "/etc/b.conf", content: "b\n", crash: true}
	s.Steps = []Step{plain}
	pb, _ := s.Plan(ctx, plain)
	func() {
		defer func() { recover() }()
		s.Apply(ctx, plain, pb)
	}()
	st, _ = LoadState(h)
	s3 := NewSession(h, *st.Answers, st)
	plain.crash = false
	if pp, _ := s3.Plan(ctx, plain); !pp.Empty() {
		t.Fatalf("a step without Reload re-planned with changes: %+v", pp.Pending())
	}
}
