package ui

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"openclaw-harden/steps"
	"openclaw-harden/system"
)

// fakeStep is a step with a canned plan that writes one real file through the host, and checks the
// test controls.
type fakeStep struct {
	id       int
	title    string
	path     string
	want     string
	warning  string
	risk     string
	blocked  string
	notes    []string
	commands []string
	// unavailable makes Plan return steps.ErrNotAvailable, like a step not built yet.
	unavailable bool
	// failing adds a check that fails while it is set.
	failing atomic.Bool
	// gate, when not nil, holds Apply until it is closed.
	gate    chan struct{}
	applied atomic.Int32
	// applyErr, when set, makes Apply fail after its write, the way a failed reload would.
	applyErr error
}

var _ steps.Step = (*fakeStep)(nil)

func (f *fakeStep) ID() int       { return f.id }
func (f *fakeStep) Title() string { return f.title }

func (f *fakeStep) Plan(_ context.Context, h *system.Host, _ steps.Answers) (steps.Plan, error) {
	if f.unavailable {
		return steps.Plan{}, steps.ErrNotAvailable
	}
	cur, err := h.ReadFile(f.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return steps.Plan{}, err
	}
	return steps.Plan{
		Changes:  []steps.Change{{Target: f.path, Kind: "file", Before: string(cur), After: f.want, Mode: 0o644, Warning: f.warning}},
		Notes:    f.notes,
		Commands: f.commands,
		Risk:     f.risk,
		Blocked:  f.blocked,
	}, nil
}

func (f *fakeStep) Apply(ctx context.Context, h *system.Host, p steps.Plan) error {
	if f.gate != nil {
		<-f.gate
	}
	f.applied.Add(1)
	for _, c := range p.Pending() {
		if err := h.WriteFile(ctx, c.Target, []byte(c.After), system.WriteOpts{Perm: c.Mode}); err != nil {
			return err
		}
	}
	if _, err := h.Exec(ctx, "systemctl", "reload", "ssh"); err != nil {
		return err
	}
	return f.applyErr
}

func (f *fakeStep) Verify(_ context.Context, h *system.Host, _ steps.Answers) []steps.Check {
	got, err := h.ReadFile(f.path)
	c := steps.Check{ID: fmt.Sprintf("fake%d.content", f.id), Name: f.path + " has the hardened content",
		Expect: fmt.Sprintf("%d bytes as planned", len(f.want)), OK: err == nil && string(got) == f.want}
	switch {
	case err != nil:
		c.Got, c.Reason = "absent", "the file was not written"
	case c.OK:
		c.Got = c.Expect
	default:
		c.Got, c.Reason = fmt.Sprintf("%d bytes, different", len(got)), "someone else changed it"
	}
	cs := []steps.Check{c}
	ok := !f.failing.Load()
	fc := steps.Check{ID: fmt.Sprintf("fake%d.effective", f.id), Name: "sshd effective PasswordAuthentication",
		Expect: "no", Got: "no", OK: ok}
	if !ok {
		fc.Got, fc.Reason = "yes", "/etc/ssh/sshd_config.d/50-cloud-init.conf is read first and sets it to yes"
	}
	return append(cs, fc)
}

const sshdDropin = `# Written by openclaw-harden (Step 0). Sorts first, so sshd uses these values.
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AuthenticationMethods publickey
`

const daemonBefore = `{
  "log-driver": "json-file",
  "data-root": "/srv/docker"
}
`

const daemonAfter = `{
  "log-driver": "json-file",
  "data-root": "/srv/docker",
  "icc": false,
  "no-new-privileges": true,
  "userland-proxy": false
}
`

func sshStep() *fakeStep {
	return &fakeStep{
		id: 0, title: "Secure VM access (SSH keys only)",
		path:     "/etc/ssh/sshd_config.d/00-openclaw-harden.conf",
		want:     sshdDropin,
		warning:  "may end password logins: confirm your key works first",
		notes:    []string{"sshd reads /etc/ssh/sshd_config.d/50-cloud-init.conf, which sets PasswordAuthentication yes."},
		commands: []string{"install -m 0644 00-openclaw-harden.conf /etc/ssh/sshd_config.d/", "sshd -t", "systemctl reload ssh"},
	}
}

func dockerStep() *fakeStep {
	return &fakeStep{
		id: 5, title: "Docker daemon hardening",
		path:     "/etc/docker/daemon.json",
		want:     daemonAfter,
		notes:    []string{"Docker 24.0.7 is installed; data-root /srv/docker is kept."},
		commands: []string{"cp /etc/docker/daemon.json /etc/docker/daemon.json.bak", "editor /etc/docker/daemon.json", "systemctl restart docker"},
	}
}

func auditStep() *fakeStep {
	return &fakeStep{id: 1, title: "Baseline audit", path: "/var/lib/openclaw-harden/audits/baseline.json", want: "{}\n"}
}

func laterStep() *fakeStep {
	return &fakeStep{id: 8, title: "Verification matrix", unavailable: true}
}

var testNow = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// newTestSession builds a session over a fake host with the fake steps in place of the real registry.
func newTestSession(t *testing.T, dry bool, admin string, ss ...steps.Step) (*steps.Session, *system.Host) {
	t.Helper()
	h := system.NewFakeHost(t.TempDir(), t.TempDir(), system.NewFakeRunner(map[string]string{"systemctl reload ssh": ""}), dry)
	h.Clock = func() time.Time { return testNow }
	a := steps.Defaults()
	a.AdminSource = admin
	s := steps.NewSession(h, a, nil)
	s.Steps = ss
	return s, h
}

func testExplain(id int) string {
	return fmt.Sprintf("Why step %d exists: a paragraph a new admin can follow,\nwrapped by its author at an odd width,\nso the wizard has to reflow it.", id)
}

// newTestModel is New at 80×24 with pinned explanations.
func newTestModel(s *steps.Session, opts Options) Model {
	m := New(s, opts)
	m.explain = testExplain
	return resize(m, 80, 24)
}

func resize(m Model, w, h int) Model {
	nm, _ := m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	return nm.(Model)
}

// drive runs cmd the way Bubble Tea would (batches concurrently), feeding every message back into Update
// until no command is left.
func drive(t *testing.T, m Model, cmd tea.Cmd) Model {
	t.Helper()
	msgs := make(chan tea.Msg, 64)
	pending := 0
	launch := func(c tea.Cmd) {
		if c == nil {
			return
		}
		pending++
		go func() { msgs <- c() }()
	}
	launch(cmd)
	deadline := time.After(10 * time.Second)
	for pending > 0 {
		select {
		case msg := <-msgs:
			pending--
			switch msg := msg.(type) {
			case nil, tea.QuitMsg:
			case tea.BatchMsg:
				for _, c := range msg {
					launch(c)
				}
			default:
				nm, next := m.Update(msg)
				m = nm.(Model)
				launch(next)
			}
		case <-deadline:
			t.Fatalf("commands did not settle; phase %d", m.phase)
		}
	}
	return m
}

// start is Init driven to rest.
func start(t *testing.T, m Model) Model {
	t.Helper()
	return drive(t, m, m.Init())
}

func keyMsg(k string) tea.KeyPressMsg {
	switch k {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "left":
		return tea.KeyPressMsg{Code: tea.KeyLeft}
	case "right":
		return tea.KeyPressMsg{Code: tea.KeyRight}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "backspace":
		return tea.KeyPressMsg{Code: tea.KeyBackspace}
	case "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	case "ctrl+u":
		return tea.KeyPressMsg{Code: 'u', Mod: tea.ModCtrl}
	}
	r := []rune(k)[0]
	return tea.KeyPressMsg{Code: r, Text: k}
}

// press sends keys one by one, driving whatever each starts to rest.
func press(t *testing.T, m Model, keys ...string) Model {
	t.Helper()
	for _, k := range keys {
		nm, cmd := m.Update(keyMsg(k))
		m = drive(t, nm.(Model), cmd)
	}
	return m
}

func typeText(t *testing.T, m Model, s string) Model {
	t.Helper()
	for _, r := range s {
		m = press(t, m, string(r))
	}
	return m
}

func plain(m Model) string { return ansi.Strip(m.View().Content) }

func requireContains(t *testing.T, view string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(view, w) {
			t.Fatalf("view lacks %q:\n%s", w, view)
		}
	}
}
