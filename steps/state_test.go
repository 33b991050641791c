package steps

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"openclaw-harden/system"
)

// fileStep is a minimal real step for session tests: it writes one file and verifies its content.
type fileStep struct {
	id      int
	path    string
	content string
	crash   bool // Apply panics after writing, as a killed process would stop
}

func (f fileStep) ID() int       { return f.id }
func (f fileStep) Title() string { return "write " + f.path }
func (f fileStep) Plan(ctx context.Context, h *system.Host, a Answers) (Plan, error) {
	before, _ := h.ReadFile(f.path)
	return Plan{Changes: []Change{{Target: f.path, Kind: "file", Before: string(before), After: f.content}}}, nil
}
func (f fileStep) Apply(ctx context.Context, h *system.Host, p Plan) error {
	if err := h.WriteFile(ctx, f.path, []byte(f.content), system.WriteOpts{}); err != nil {
		return err
	}
	if f.crash {
		panic("killed mid-apply")
	}
	return nil
}
func (f fileStep) Verify(ctx context.Context, h *system.Host, a Answers) []Check {
	got, _ := h.ReadFile(f.path)
	return []Check{{ID: "content", Name: "content of " + f.path, Expect: f.content, Got: string(got), OK: string(got) == f.content}}
}

func TestSessionRecordsResumeAndInterrupted(t *testing.T) {
	h := system.NewFakeHost(t.TempDir(), t.TempDir(), system.NewFakeRunner(nil), false)
	ctx := context.Background()
	s := NewSession(h, Defaults(), nil)
	s.Steps = []Step{fileStep{id: 0, path: "/etc/a", content: "a\n"}, fileStep{id: 1, path: "/etc/b", content: "b\n", crash: true}}
	p, err := s.Plan(ctx, s.Steps[0])
	if err != nil || p.Summary() != "Apply 1 change to 1 file?" {
		t.Fatalf("plan: %v %q", err, p.Summary())
	}
	if err := s.Apply(ctx, s.Steps[0], p); err != nil {
		t.Fatal(err)
	}
	if cs := s.Verify(ctx, s.Steps[0]); !Passed(cs) {
		t.Fatalf("verify: %+v", cs)
	}
	p1, _ := s.Plan(ctx, s.Steps[1])
	func() {
		defer func() { recover() }()
		s.Apply(ctx, s.Steps[1], p1)
	}()

	// A new process: step 0 passed, step 1 was cut off mid-apply.
	st, err := LoadState(h)
	if err != nil {
		t.Fatal(err)
	}
	if st.Get(0).Status != StatusPassed {
		t.Fatalf("step 0 = %+v", st.Get(0))
	}
	if got := st.Get(1); got.Status != StatusInterrupted || !strings.Contains(got.Message, "planned again") {
		t.Fatalf("step 1 = %+v", got)
	}
	s2 := NewSession(h, *st.Answers, st)
	s2.Steps = s.Steps
	if r := s2.Resume(); r != 1 {
		t.Fatalf("resume at %d, want 1", r)
	}
	// Second run of step 0: nothing to do.
	p0, _ := s2.Plan(ctx, s2.Steps[0])
	if !p0.Empty() || p0.Summary() != "No changes" {
		t.Fatalf("re-plan: %q", p0.Summary())
	}
	data, _ := os.ReadFile(filepath.Join(h.StateDir, "state.json"))
	if st, _ := os.Stat(filepath.Join(h.StateDir, "state.json")); st.Mode().Perm() != 0o600 {
		t.Fatalf("state.json mode %v", st.Mode())
	}
	if !strings.Contains(string(data), `"admin_source"`) {
		t.Fatalf("answers not saved in state:\n%s", data)
	}
}

func TestPlaceholderStepsCannotPass(t *testing.T) {
	h := system.NewFakeHost(t.TempDir(), t.TempDir(), system.NewFakeRunner(nil), false)
	s := NewSession(h, Defaults(), nil)
	for _, st := range s.Steps {
		if Available(st) {
			continue
		}
		if _, err := s.Plan(context.Background(), st); !errors.Is(err, ErrNotAvailable) {
			t.Errorf("step %d plan err = %v", st.ID(), err)
		}
		if err := s.Apply(context.Background(), st, Plan{}); !errors.Is(err, ErrNotAvailable) {
			t.Errorf("step %d apply err = %v", st.ID(), err)
		}
		if Passed(s.Verify(context.Background(), st)) || s.Status(st.ID()).Status != StatusUnavailable {
			t.Errorf("step %d passed or has status %v", st.ID(), s.Status(st.ID()))
		}
	}
	if Passed(nil) {
		t.Fatal("no checks counted as a pass")
	}
	if len(All()) != 9 {
		t.Fatalf("registry has %d steps", len(All()))
	}
	for i, st := range All() {
		if st.ID() != i {
			t.Fatalf("step %d at position %d", st.ID(), i)
		}
	}
}

func TestCorruptStateIsOneSentence(t *testing.T) {
	h := system.NewFakeHost(t.TempDir(), t.TempDir(), system.NewFakeRunner(nil), false)
	os.WriteFile(filepath.Join(h.StateDir, "state.json"), []byte("{half"), 0o600)
	_, err := LoadState(h)
	if err == nil || !strings.Contains(err.Error(), "state.json is not a state file") {
		t.Fatalf("err = %v", err)
	}
}

func TestChangeActionsAndRedactedDiff(t *testing.T) {
	c := Change{Target: "/opt/openclaw/.env", Before: "", After: "TOKEN=supersecret1\n", Secrets: []string{"supersecret1"}}
	if c.Action() != "+" || strings.Contains(c.Diff(), "supersecret1") || !strings.Contains(c.Diff(), "<redacted>") {
		t.Fatalf("%s %s", c.Action(), c.Diff())
	}
	if (Change{Before: "x", After: "x"}).Diff() != "" || (Change{Before: "x"}).Action() != "-" || (Change{Before: "x", After: "y"}).Action() != "~" {
		t.Fatal("actions")
	}
}

func TestRollbackReloadsWhatUsesTheFiles(t *testing.T) {
	r := system.NewFakeRunner(map[string]string{"systemctl reload ssh.service": ""})
	h := system.NewFakeHost(t.TempDir(), t.TempDir(), r, false)
	s := NewSession(h, Defaults(), nil)
	h.SetStep(0)
	if err := h.WriteFile(context.Background(), "/etc/ssh/sshd_config.d/00-openclaw-harden.conf", []byte("PasswordAuthentication no\n"), system.WriteOpts{}); err != nil {
		t.Fatal(err)
	}
	paths, err := s.Rollback(0)
	if err != nil || len(paths) != 1 {
		t.Fatalf("rollback: %v %v", paths, err)
	}
	calls := r.CallsSnapshot()
	if len(calls) != 1 || calls[0] != "systemctl reload ssh.service" {
		t.Fatalf("after restoring sshd's drop-in the rollback ran %q, want a reload of ssh.service", calls)
	}
	// Nothing restored: nothing reloaded.
	if _, err := s.Rollback(0); err != nil || len(r.CallsSnapshot()) != 1 {
		t.Fatalf("second rollback: %v, calls %q", err, r.CallsSnapshot())
	}
}

// Two runs that loaded the same state.json and then verify different steps at once (the lab and a cron job
// do) keep both records: each save writes its own steps onto the file as the other left it.
func TestConcurrentRunsKeepEachOthersRecords(t *testing.T) {
	root, stateDir := t.TempDir(), t.TempDir()
	ctx := context.Background()
	var stepsAll []Step
	for i := 0; i < 8; i++ {
		p := filepath.Join("/etc", "f"+string(rune('a'+i)))
		stepsAll = append(stepsAll, fileStep{id: i, path: p, content: "x\n"})
		if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Every run starts from the same file, as processes started together do.
	first := NewSession(system.NewFakeHost(root, stateDir, system.NewFakeRunner(nil), false), Defaults(), nil)
	first.State.Set(7, StatusFailed, "from an earlier run", first.Host.Now())
	if err := first.State.Save(first.Host); err != nil {
		t.Fatal(err)
	}
	var sessions []*Session
	for i := 0; i < 7; i++ {
		h := system.NewFakeHost(root, stateDir, system.NewFakeRunner(nil), false)
		st, err := LoadState(h)
		if err != nil {
			t.Fatal(err)
		}
		s := NewSession(h, Defaults(), st)
		s.Steps = stepsAll
		sessions = append(sessions, s)
	}
	var wg sync.WaitGroup
	for i, s := range sessions {
		wg.Add(1)
		go func(i int, s *Session) {
			defer wg.Done()
			for n := 0; n < 20; n++ { // many saves each, so they interleave
				s.Verify(ctx, s.Steps[i])
			}
		}(i, s)
	}
	wg.Wait()
	st, err := LoadState(system.NewFakeHost(root, stateDir, system.NewFakeRunner(nil), false))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 7; i++ {
		if got := st.Get(i); got.Status != StatusPassed {
			t.Errorf("step %d = %+v, want passed (another run's save lost it)", i, got)
		}
	}
	if got := st.Get(7); got.Status != StatusFailed || got.Message != "from an earlier run" {
		t.Errorf("step 7, which no run touched, = %+v, want the earlier run's record", got)
	}
}

// A run keeps what it found interrupted in memory (it re-plans the step with a reload) without rewriting
// the file's "applying": another run that loads the file later finds it interrupted too.
func TestSaveLeavesOtherStepsAsOnDisk(t *testing.T) {
	root, stateDir := t.TempDir(), t.TempDir()
	h := system.NewFakeHost(root, stateDir, system.NewFakeRunner(nil), false)
	s := NewSession(h, Defaults(), nil)
	s.State.Set(5, StatusApplying, "", h.Now())
	if err := s.State.Save(h); err != nil {
		t.Fatal(err)
	}
	st, err := LoadState(h)
	if err != nil {
		t.Fatal(err)
	}
	s2 := NewSession(h, Defaults(), st)
	if s2.Status(5).Status != StatusInterrupted {
		t.Fatalf("step 5 = %+v, want interrupted", s2.Status(5))
	}
	s2.set(0, StatusPassed, "")
	if s2.Status(5).Status != StatusInterrupted {
		t.Fatalf("after saving step 0, step 5 in memory = %+v, want interrupted still", s2.Status(5))
	}
	st3, err := LoadState(h)
	if err != nil {
		t.Fatal(err)
	}
	if st3.Get(5).Status != StatusInterrupted || st3.Get(0).Status != StatusPassed {
		t.Fatalf("a later run reads step 0 %+v, step 5 %+v", st3.Get(0), st3.Get(5))
	}
}
