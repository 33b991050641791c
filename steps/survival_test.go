package steps

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"openclaw-harden/system"
)

// survivorStep is fileStep tracked like Step 4.
type survivorStep struct{ fileStep }

func (survivorStep) TracksSurvival() {}

const dockerInvocationArgv = "systemctl show docker.service -p InvocationID --value"

type survivalWorld struct {
	t    *testing.T
	root string
	fr   *system.FakeRunner
	h    *system.Host
	now  time.Time
	s    *Session
	st   survivorStep
}

func newSurvivalWorld(t *testing.T) *survivalWorld {
	w := &survivalWorld{t: t, root: t.TempDir(), fr: system.NewFakeRunner(nil), now: time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)}
	w.h = system.NewFakeHost(w.root, t.TempDir(), w.fr, false)
	w.h.Clock = func() time.Time { return w.now }
	w.st = survivorStep{fileStep{id: 4, path: "/etc/ufw/after.rules", content: "block\n"}}
	w.s = NewSession(w.h, Defaults(), nil)
	w.s.Steps = []Step{w.st}
	w.write("/etc/ufw/after.rules", "block\n")
	w.boot("boot-1")
	w.docker("docker-1")
	return w
}

func (w *survivalWorld) write(p, content string) {
	full := filepath.Join(w.root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

func (w *survivalWorld) boot(id string) { w.write(BootIDPath, id+"\n") }
func (w *survivalWorld) docker(id string) {
	w.fr.Set(dockerInvocationArgv, system.FakeResponse{Stdout: id + "\n"})
}

// verify moves the clock a minute on and verifies; it returns the record after.
func (w *survivalWorld) verify(wantPass bool) Survival {
	w.t.Helper()
	w.now = w.now.Add(time.Minute)
	if got := Passed(w.s.Verify(context.Background(), w.st)); got != wantPass {
		w.t.Fatalf("verify passed=%v, want %v", got, wantPass)
	}
	sv, ok := w.s.Survival(4)
	if !ok {
		w.t.Fatal("step 4 is not tracked")
	}
	return sv
}

func proven(p *time.Time) string {
	if p == nil {
		return "never"
	}
	return p.Format(time.RFC3339)
}

func TestSurvivalIsProvenByPassingVerificationsAcrossRestarts(t *testing.T) {
	w := newSurvivalWorld(t)
	sv := w.verify(true) // the first pass starts the chain: nothing proven yet
	if sv.Boot != "boot-1" || sv.Docker != "docker-1" || sv.DockerRestart != nil || sv.Reboot != nil || !sv.Since.Equal(w.now) {
		t.Fatalf("first pass: %+v", sv)
	}
	if sv = w.verify(true); sv.DockerRestart != nil || sv.Reboot != nil {
		t.Fatalf("nothing restarted, yet: %+v", sv)
	}

	w.docker("docker-2") // systemctl restart docker
	sv = w.verify(true)
	restartAt := w.now
	if proven(sv.DockerRestart) != restartAt.Format(time.RFC3339) || sv.Reboot != nil {
		t.Fatalf("after a Docker restart: docker_restart %s reboot %s", proven(sv.DockerRestart), proven(sv.Reboot))
	}

	w.boot("boot-2") // a reboot: Docker starts again too, which proves the reboot, not a restart in one boot
	w.docker("docker-3")
	sv = w.verify(true)
	if proven(sv.Reboot) != w.now.Format(time.RFC3339) || proven(sv.DockerRestart) != restartAt.Format(time.RFC3339) {
		t.Fatalf("after a reboot: docker_restart %s reboot %s", proven(sv.DockerRestart), proven(sv.Reboot))
	}

	// It is kept in state.json and read back.
	st, err := LoadState(w.h)
	if err != nil {
		t.Fatal(err)
	}
	if r := st.Survival["4"]; r == nil || r.Reboot == nil || r.DockerRestart == nil || r.Boot != "boot-2" {
		t.Fatalf("state.json: %+v", st.Survival)
	}
}

func TestSurvivalRestartsAfterAFailureOrAnApply(t *testing.T) {
	w := newSurvivalWorld(t)
	w.verify(true)
	// Docker restarts and the rules are lost: the verification fails, and the record goes.
	w.docker("docker-2")
	w.write("/etc/ufw/after.rules", "lost\n")
	w.verify(false)
	if _, has := w.s.State.Survival["4"]; has {
		t.Fatalf("a failed verification keeps %+v", w.s.State.Survival["4"])
	}
	// Someone fixes it by hand: the next pass starts afresh; the restart before it proves nothing.
	w.write("/etc/ufw/after.rules", "block\n")
	if sv := w.verify(true); sv.DockerRestart != nil || sv.Docker != "docker-2" {
		t.Fatalf("a pass after a failure proved %+v", sv)
	}
	w.docker("docker-3")
	if sv := w.verify(true); sv.DockerRestart == nil {
		t.Fatalf("a restart between two passes is not proven: %+v", sv)
	}
	// An apply changes the rules: the proofs were about the old ones.
	w.s.State.Set(4, StatusApplied, "", w.now)
	w.boot("boot-2")
	if sv := w.verify(true); sv.DockerRestart != nil || sv.Reboot != nil || sv.Boot != "boot-2" {
		t.Fatalf("after an apply: %+v", sv)
	}
}

func TestSurvivalNeedsBothIdentities(t *testing.T) {
	w := newSurvivalWorld(t)
	w.fr.Set(dockerInvocationArgv, system.FakeResponse{Exit: 1, Stderr: "System has not been booted with systemd"})
	w.verify(true)
	w.docker("docker-2")
	if sv := w.verify(true); sv.DockerRestart != nil {
		t.Fatalf("an unknown Docker identity before proves nothing: %+v", sv)
	}
	w.fr.Set(dockerInvocationArgv, system.FakeResponse{Stdout: "\n"}) // Docker stopped: no invocation
	if sv := w.verify(true); sv.DockerRestart != nil || sv.Docker != "" {
		t.Fatalf("a stopped Docker proves nothing: %+v", sv)
	}
	w.docker("docker-3")
	if sv := w.verify(true); sv.DockerRestart != nil {
		t.Fatalf("%+v", sv)
	}
	if err := os.Remove(filepath.Join(w.root, BootIDPath)); err != nil {
		t.Fatal(err)
	}
	if sv := w.verify(true); sv.Reboot != nil || sv.Boot != "" {
		t.Fatalf("an unreadable boot id proves no reboot: %+v", sv)
	}
}

func TestOnlySurvivorStepsAreTracked(t *testing.T) {
	w := newSurvivalWorld(t)
	plain := fileStep{id: 5, path: "/etc/ufw/after.rules", content: "block\n"}
	w.s.Steps = append(w.s.Steps, plain)
	w.s.Verify(context.Background(), plain)
	if _, ok := w.s.Survival(5); ok || len(w.s.State.Survival) != 0 {
		t.Fatalf("step 5 tracked: %+v", w.s.State.Survival)
	}
	for _, c := range w.fr.CallsSnapshot() {
		if c == dockerInvocationArgv {
			t.Fatal("a step that is not tracked asked systemd about Docker")
		}
	}
	if _, ok := interface{}(DockerUserStep{}).(Survivor); !ok {
		t.Fatal("Step 4 is not a Survivor")
	}
}
