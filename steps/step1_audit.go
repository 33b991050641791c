package steps

import (
	"context"
	"time"

	"openclaw-harden/system"
)

// Snapshot is a structured picture of the machine: per-item facts, so two snapshots diff per item.
type Snapshot struct {
	Version int       `json:"version"`
	Taken   time.Time `json:"taken"`
	Items   []Item    `json:"items"`
	Notes   []string  `json:"notes,omitempty"` // facts about what could not be read (no Docker yet, not root)
}

// Item is one fact: section ("docker", "sshd", "listen", "iptables filter FORWARD"), key and value.
type Item struct {
	Section string `json:"section"`
	Key     string `json:"key"`
	Value   string `json:"value"`
}

// AuditStep is Step 1: take the before snapshot.
type AuditStep struct{}

func (AuditStep) ID() int       { return 1 }
func (AuditStep) Title() string { return "Baseline audit" }

func (AuditStep) Plan(ctx context.Context, h *system.Host, a Answers) (Plan, error) {
	return Plan{Step: 1, Title: "Baseline audit"}, ErrNotAvailable
}
func (AuditStep) Apply(ctx context.Context, h *system.Host, p Plan) error { return ErrNotAvailable }
func (AuditStep) Verify(ctx context.Context, h *system.Host, a Answers) []Check {
	return notYet{1, ""}.Verify(ctx, h, a)
}
