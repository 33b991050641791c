package ui

import (
	"context"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"

	"openclaw-harden/steps"
	"openclaw-harden/system"
)

// cannedStep plans nothing and verifies with the checks it holds: Step 8's results without the network.
type cannedStep struct {
	id     int
	title  string
	checks []steps.Check
}

func (c cannedStep) ID() int       { return c.id }
func (c cannedStep) Title() string { return c.title }
func (c cannedStep) Plan(context.Context, *system.Host, steps.Answers) (steps.Plan, error) {
	return steps.Plan{}, nil
}
func (c cannedStep) Apply(context.Context, *system.Host, steps.Plan) error { return nil }
func (c cannedStep) Verify(context.Context, *system.Host, steps.Answers) []steps.Check {
	return append([]steps.Check(nil), c.checks...)
}

// matrixChecks is a Step 8 result: the container, the VM and the LAN part as the matrix returns them.
func matrixChecks(lanRan bool) []steps.Check {
	cs := []steps.Check{
		{ID: "step8.container.found", Name: "running gateway container", Expect: "found, running", Got: "openclaw-gateway, pid 812 (docker API)", OK: true, Source: "container"},
		{ID: "step8.container.udp5353", Name: "nothing listens on 5353/udp in the container", Expect: "no socket on 5353/udp", Got: "none", OK: true, Source: "container", Target: "udp :5353"},
		{ID: "step8.container.must-fail.lan-gateway", Name: "http GET http://192.168.1.1:80/", Expect: steps.ExpectMustFail, Got: "dropped: no answer within 5s", OK: true, Source: "container", Target: "http://192.168.1.1:80/"},
		{ID: "step8.container.must-fail.lan-host", Name: "http GET http://192.168.1.2:80/", Expect: steps.ExpectMustFail, Got: "reached: answered HTTP/1.0 200 OK", Reason: "the target answered: nothing on the way blocked it", Source: "container", Target: "http://192.168.1.2:80/"},
		{ID: "step8.container.must-fail.private-10", Name: "http GET http://10.0.0.1:80/", Expect: steps.ExpectMustFail, Got: "rejected: connection refused", OK: true, Source: "container", Target: "http://10.0.0.1:80/"},
		{ID: "step8.container.must-work.telegram", Name: "tls api.telegram.org at api.telegram.org:443", Expect: "works", Got: "works: TLS 1.3, certificate for api.telegram.org verified", OK: true, Source: "container", Target: "api.telegram.org:443"},
		{ID: "step8.vm.gateway-loopback", Name: "http GET http://127.0.0.1:18789/", Expect: "works", Got: "works: answered HTTP/1.1 200 OK", OK: true, Source: "vm", Target: "http://127.0.0.1:18789/"},
		{ID: "step8.vm.gateway-port", Name: "gateway port bound to 127.0.0.1 only (ss -tlnp)", Expect: "127.0.0.1:18789", Got: "0.0.0.0:18789", Reason: "docker-proxy listens on every address: the compose file publishes the port without 127.0.0.1", Source: "vm", Target: "tcp :18789"},
	}
	if !lanRan {
		return append(cs, steps.Check{ID: "step8.lan.not-run", Name: "probes from another LAN host", Expect: "optional (answers probes.lan_host)",
			Got: "not run: no probes.lan_host in the answers", OK: true, Skipped: true, Reason: steps.LANUnproven, Source: "lan"})
	}
	return append(cs,
		steps.Check{ID: "step8.lan.ssh-login", Name: "SSH to the LAN host 192.168.1.2 as admin", Expect: "logged in, probes run", Got: "ran 3 probes (host key SHA256:abc, not pinned)", OK: true, Source: "lan", Target: "192.168.1.2:22"},
		steps.Check{ID: "step8.lan.gateway-tcp", Name: "tcp 192.168.1.10:18789", Expect: steps.ExpectMustFail, Got: "dropped: no answer within the timeout", OK: true, Source: "lan", Target: "192.168.1.10:18789"},
		steps.Check{ID: "step8.lan.ssh", Name: "tcp 192.168.1.10:22", Expect: steps.ExpectMustFail, Got: "rejected: connection refused", OK: true, Source: "lan", Target: "192.168.1.10:22"},
	)
}

// TestStep8Screens pins Step 8's results: a table per source at 80×24. Regenerate with:
// go test ./ui -run TestStep8Screens -update
func TestStep8Screens(t *testing.T) {
	cases := []struct {
		name   string
		lanRan bool
		scroll string
		wants  []string
	}{
		{"matrix_failed_top", false, "", []string{"From the container (gateway's network namespace)", "✓ running gateway container", "✗ http GET http://192.168.1.2:80/", "why: the target answered"}},
		{"matrix_failed_vm_lan_not_run", false, "From the VM", []string{"From the VM", "✗ gateway port bound to 127.0.0.1 only", "From the LAN host: not run", "unproven without it"}},
		{"matrix_lan_ran", true, "From the LAN host", []string{"From the LAN host 192.168.1.2", "✓ tcp 192.168.1.10:18789", "dropped: no answer"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := newTestSession(t, false, "192.168.1.50", cannedStep{id: 8, title: "Verification matrix", checks: matrixChecks(c.lanRan)})
			m := start(t, newTestModel(s, Options{}))
			if m.phase != phaseVerified {
				t.Fatalf("phase %d, want the verification", m.phase)
			}
			if c.scroll != "" {
				m = scrollTo(t, m, c.scroll)
			}
			view := plain(m)
			assertFits(t, view, m.width, m.height)
			requireContains(t, view, c.wants...)
			golden.RequireEqual(t, []byte(view))
		})
	}
}

// The table keeps to the terminal's width at any size, and the details view keeps the headings.
func TestStep8TableFitsAndDetailsKeepHeadings(t *testing.T) {
	for _, w := range []int{60, 80, 100, 140} {
		s, _ := newTestSession(t, false, "192.168.1.50", cannedStep{id: 8, title: "Verification matrix", checks: matrixChecks(false)})
		m := resize(start(t, newTestModel(s, Options{})), w, 24)
		body := m.checksView(m.checks[m.cur], w, false)
		for i, l := range strings.Split(body, "\n") {
			if got := ansiWidth(l); got > w {
				t.Errorf("width %d: line %d is %d cells: %q", w, i+1, got, l)
			}
		}
		full := ansi.Strip(m.checksView(m.checks[m.cur], w, true))
		requireContains(t, full, "From the container (gateway's network namespace)", "From the VM", "From the LAN host: not run", "expected")
	}
}
