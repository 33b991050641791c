// Package steps holds the hardening profile's Steps 0–8: for each, a read-only Plan, an Apply that only
// carries out that plan, and a Verify that probes the live system. Steps reach the OS only through *system.Host.
package steps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/aymanbagabas/go-udiff"

	"openclaw-harden/system"
)

// Change is one file, rule set or setting a step will change. Its action is derived from Before and After.
type Change struct {
	Target   string   // "/etc/ssh/sshd_config.d/00-openclaw-harden.conf", "iptables filter DOCKER-USER"
	Kind     string   // "file", "rules", "setting", "packages", "state"
	Before   string   // what is there now ("" when absent)
	After    string   // what will be there ("" when it will be removed)
	Validate []string // argv run on the temp file before it is moved in; "%s" is its path
	Mode     fs.FileMode
	Warning  string   // "may end password logins: confirm your key works first"
	Secrets  []string // values shown as <redacted> wherever this change is displayed
}

// Action is "+" (create), "-" (remove), "~" (change) or "=" (already as wanted).
func (c Change) Action() string {
	switch {
	case c.Before == c.After:
		return "="
	case c.Before == "":
		return "+"
	case c.After == "":
		return "-"
	}
	return "~"
}

func (c Change) redact(s string) string {
	for _, sec := range c.Secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "<redacted>")
		}
	}
	return s
}

// Diff is the unified diff of this change with secrets redacted; "" when there is nothing to change.
func (c Change) Diff() string {
	if c.Action() == "=" {
		return ""
	}
	before, after := c.redact(c.Before), c.redact(c.After)
	if before != "" && !strings.HasSuffix(before, "\n") {
		before += "\n"
	}
	if after != "" && !strings.HasSuffix(after, "\n") {
		after += "\n"
	}
	from, to := "a"+c.Target, "b"+c.Target
	if !strings.HasPrefix(c.Target, "/") {
		from, to = "a/"+c.Target, "b/"+c.Target
	}
	if c.Before == "" {
		from = "/dev/null"
	}
	if c.After == "" {
		to = "/dev/null"
	}
	return udiff.Unified(from, to, before, after)
}

// Plan is what a step would do, as data. Rendering is the UI's business.
type Plan struct {
	Step     int
	Title    string
	Changes  []Change
	Notes    []string // facts the operator should read (e.g. "Docker 20.10 ignores default-network-opts")
	Commands []string // what an admin would type by hand for the same plan (training view)
	// Blocked is set when a guard refuses the step; Apply must not run. One sentence saying why.
	Blocked string
	// Risk, when set, must be confirmed on its own screen before Apply (a named lockout risk).
	Risk string
	// Data carries step-private values from Plan to Apply (e.g. computed rule sets).
	Data any
}

// Pending returns the changes that are not no-ops.
func (p Plan) Pending() []Change {
	var out []Change
	for _, c := range p.Changes {
		if c.Action() != "=" {
			out = append(out, c)
		}
	}
	return out
}

// Empty reports a plan with nothing to do: the step is already as wanted.
func (p Plan) Empty() bool { return len(p.Pending()) == 0 }

// Summary is the confirmation question: "Apply 3 changes to 2 files?"
func (p Plan) Summary() string {
	pend := p.Pending()
	if len(pend) == 0 {
		return "No changes"
	}
	files := 0
	for _, c := range pend {
		if c.Kind == "" || c.Kind == "file" {
			files++
		}
	}
	s := fmt.Sprintf("Apply %d change%s", len(pend), plural(len(pend)))
	if files > 0 {
		s += fmt.Sprintf(" to %d file%s", files, plural(files))
		if files < len(pend) {
			s += fmt.Sprintf(" and %d other target%s", len(pend)-files, plural(len(pend)-files))
		}
	}
	return s + "?"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// Check is one verification result. Every check can fail, and says why.
type Check struct {
	ID string `json:"id"`
	// Step is the step the check belongs to; Session.Verify sets it, so every check carries it.
	Step   int    `json:"step"`
	Name   string `json:"name"`
	Expect string `json:"expect"`
	Got    string `json:"got"`
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"` // how it failed (or what it could not run)
	// Source, Target and DurationMS are set by probes (Step 8): where it was sent from ("container", "vm",
	// "lan"), what it was sent to, and how long it took.
	// Skipped marks an optional check that was not run (no LAN host in the answers): it does not fail
	// verify, and it is never shown as passed (– rather than ✓), since nothing was proven.
	Skipped    bool   `json:"skipped,omitempty"`
	Source     string `json:"source,omitempty"`
	Target     string `json:"target,omitempty"`
	DurationMS int64  `json:"duration_ms,omitempty"`
}

// Passed reports whether there is at least one check and every check passed. No checks is not a pass.
func Passed(cs []Check) bool {
	if len(cs) == 0 {
		return false
	}
	for _, c := range cs {
		if !c.OK {
			return false
		}
	}
	return true
}

// Step is one step of the profile.
type Step interface {
	ID() int
	Title() string
	Plan(ctx context.Context, h *system.Host, a Answers) (Plan, error)
	Apply(ctx context.Context, h *system.Host, p Plan) error
	Verify(ctx context.Context, h *system.Host, a Answers) []Check
}

// ErrNotAvailable is what a step that has not been built yet returns from Plan and Apply.
var ErrNotAvailable = errors.New("not available yet in this version of openclaw-harden")

// notYet stands in the registry for a step that is not implemented: it is listed, and it can never pass.
type notYet struct {
	id    int
	title string
}

func (n notYet) ID() int       { return n.id }
func (n notYet) Title() string { return n.title }
func (n notYet) Plan(context.Context, *system.Host, Answers) (Plan, error) {
	return Plan{Step: n.id, Title: n.title}, ErrNotAvailable
}
func (n notYet) Apply(context.Context, *system.Host, Plan) error { return ErrNotAvailable }
func (n notYet) Verify(context.Context, *system.Host, Answers) []Check {
	return []Check{{ID: fmt.Sprintf("step%d.available", n.id), Name: "step implemented", Expect: "implemented",
		Got: "not available yet", OK: false, Reason: "this step is not implemented in this version"}}
}

// Available reports whether s is a real step rather than a placeholder.
func Available(s Step) bool {
	_, placeholder := s.(notYet)
	return !placeholder
}

// All returns Steps 0–8 in order.
func All() []Step {
	return []Step{
		SSHStep{},
		AuditStep{},
		HostStep{},
		ProxmoxStep{},
		DockerUserStep{},
		DaemonStep{},
		ComposeStep{},
		PolicyStep{},
		MatrixStep{},
	}
}

// ByID finds a step; ok is false for numbers outside 0–8.
func ByID(id int) (Step, bool) {
	for _, s := range All() {
		if s.ID() == id {
			return s, true
		}
	}
	return nil, false
}

// Confirmation is a fact the tool cannot see from inside the VM (a hypervisor switch): the operator checks it
// by hand with Commands and confirms it when the output matches Expect.
type Confirmation struct {
	ID       string
	Name     string
	Commands []string
	Expect   string
}

// Confirmer is a step whose verification counts the operator's confirmations. Confirm records them so
// Verify can read them back (bound to what was confirmed, so a changed artifact needs a new confirmation).
type Confirmer interface {
	Confirmations(a Answers) []Confirmation
	Confirm(h *system.Host, a Answers, ids []string) error
}

// Reloader is a step whose files only take effect after a reload (sshd, UFW, Docker, the gateway). Rollback
// runs it so "rolled back" means the running system, not just the files; and a step whose apply was cut off
// between writing a file and reloading runs it when applied again, since its plan, comparing files, would
// otherwise find nothing to do while the running service still has the old settings.
type Reloader interface {
	Reload(ctx context.Context, h *system.Host) error
}
