package steps

import (
	"context"
	"strconv"
	"strings"
	"time"

	"openclaw-harden/system"
)

// Survivor is a step whose live rules must outlive a Docker restart and a reboot (Step 4's DOCKER-USER
// block: Docker rewrites its chains when it starts; after a reboot UFW must load the block before Docker
// starts forwarding). Session.Verify records when a passing verification proved each.
type Survivor interface {
	TracksSurvival()
}

// TracksSurvival marks Step 4 as a Survivor.
func (DockerUserStep) TracksSurvival() {}

// Survival is what state.json keeps per Survivor step. Boot is /proc/sys/kernel/random/boot_id, new on
// every boot; Docker is the docker.service InvocationID systemd gives each start of the unit. Both are from
// the last passing verification; a proof is recorded when the next passing one, with no failure, apply or
// rollback in between, sees a new boot (a reboot) or, in the same boot, a new Docker (a Docker restart).
type Survival struct {
	Boot          string     `json:"boot_id,omitempty"`
	Docker        string     `json:"docker_invocation_id,omitempty"`
	Since         time.Time  `json:"since"`                    // when this chain of passing verifications began
	Seen          time.Time  `json:"seen"`                     // the last passing verification
	DockerRestart *time.Time `json:"docker_restart,omitempty"` // when a verification first proved it
	Reboot        *time.Time `json:"reboot,omitempty"`
}

// BootIDPath is the kernel's id of the running boot.
const BootIDPath = "/proc/sys/kernel/random/boot_id"

// ProveDockerRestart and ProveReboot are the commands that prove a Survivor step's rules survive.
func ProveDockerRestart(id int) string {
	return "systemctl restart docker && openclaw-harden verify --step " + strconv.Itoa(id)
}

func ProveReboot(id int) string {
	return "reboot, then openclaw-harden verify --step " + strconv.Itoa(id)
}

// observeRuntime reads the boot id and Docker's start identity; "" for what cannot be read (Docker not
// running, no systemd), which then proves nothing.
func observeRuntime(ctx context.Context, h *system.Host) (boot, docker string) {
	if b, err := h.ReadFile(BootIDPath); err == nil {
		boot = strings.TrimSpace(string(b))
	}
	if out, err := h.Read(ctx, "systemctl", "show", "docker.service", "-p", "InvocationID", "--value"); err == nil {
		docker = strings.TrimSpace(string(out))
	}
	return boot, docker
}

// recordSurvival updates a Survivor step's record after its verification. prev is the step's status before
// this verification: only a pass that follows a pass continues the chain; anything else (a failure, an
// apply, a rollback, a first run) starts it again and drops the old proofs, since the rules they were about
// may have changed or been lost.
func (s *Session) recordSurvival(ctx context.Context, st Step, prev Status, passed bool) {
	if _, ok := st.(Survivor); !ok {
		return
	}
	key := strconv.Itoa(st.ID())
	if !passed {
		s.mu.Lock()
		s.State.setSurvival(key, nil) // also one another run recorded meanwhile
		s.mu.Unlock()
		return
	}
	boot, docker := observeRuntime(ctx, s.Host)
	now := s.Host.Now().UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.State.Survival[key]
	if old == nil || prev != StatusPassed {
		s.State.setSurvival(key, &Survival{Boot: boot, Docker: docker, Since: now, Seen: now})
		return
	}
	s.State.setSurvival(key, old)
	switch {
	case boot != "" && old.Boot != "" && boot != old.Boot:
		if old.Reboot == nil {
			old.Reboot = &now
		}
	case docker != "" && old.Docker != "" && docker != old.Docker && boot == old.Boot:
		if old.DockerRestart == nil {
			old.DockerRestart = &now
		}
	}
	old.Boot, old.Docker, old.Seen = boot, docker, now
}

// Survival returns a Survivor step's record; ok is false for other steps. A step with no record yet has a
// zero Survival: nothing proven.
func (s *Session) Survival(id int) (sv Survival, ok bool) {
	for _, st := range s.Steps {
		if _, is := st.(Survivor); is && st.ID() == id {
			ok = true
		}
	}
	if !ok {
		return sv, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.State.Survival[strconv.Itoa(id)]; r != nil {
		sv = *r
	}
	return sv, true
}
