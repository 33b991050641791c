package system

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newTestHost(t *testing.T, dry bool) (*Host, *FakeRunner) {
	t.Helper()
	r := NewFakeRunner(nil)
	h := NewFakeHost(t.TempDir(), t.TempDir(), r, dry)
	return h, r
}

func TestWriteFileBacksUpValidatesAndRestores(t *testing.T) {
	h, r := newTestHost(t, false)
	h.SetStep(0)
	p := "/etc/ssh/sshd_config.d/50-cloud-init.conf"
	real := h.Path(p)
	os.MkdirAll(filepath.Dir(real), 0o755)
	if err := os.WriteFile(real, []byte("PasswordAuthentication yes\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	// The validator sees the temp file, whose name is random: answer any sshd -t call by wrapping the runner.
	h.Runner = validatorRunner{ok: true, inner: r}
	if err := h.WriteFile(context.Background(), p, []byte("PasswordAuthentication no\n"), WriteOpts{Validate: []string{"sshd", "-t", "-f", "%s"}}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(real)
	if string(got) != "PasswordAuthentication no\n" {
		t.Fatalf("content = %q", got)
	}
	st, _ := os.Stat(real)
	if st.Mode().Perm() != 0o640 {
		t.Fatalf("mode not kept: %v", st.Mode())
	}
	// A second write in the same run keeps the FIRST backup (the original).
	if err := h.WriteFile(context.Background(), p, []byte("PasswordAuthentication no\n# again\n"), WriteOpts{}); err != nil {
		t.Fatal(err)
	}
	// A new file that did not exist is removed on rollback.
	if err := h.WriteFile(context.Background(), "/etc/new.conf", []byte("x\n"), WriteOpts{Perm: 0o600}); err != nil {
		t.Fatal(err)
	}
	paths, err := h.Rollback(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2 {
		t.Fatalf("restored %v, want 2 paths", paths)
	}
	got, _ = os.ReadFile(real)
	if string(got) != "PasswordAuthentication yes\n" {
		t.Fatalf("after rollback content = %q", got)
	}
	st, _ = os.Stat(real)
	if st.Mode().Perm() != 0o640 {
		t.Fatalf("after rollback mode = %v", st.Mode())
	}
	if _, err := os.Stat(h.Path("/etc/new.conf")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file created by the tool survived rollback: %v", err)
	}
	journal, _ := os.ReadFile(filepath.Join(h.StateDir, "journal.log"))
	for _, want := range []string{"validate: sshd -t -f", "write: " + p, "rollback: restored " + p, "rollback: removed /etc/new.conf"} {
		if !strings.Contains(string(journal), want) {
			t.Errorf("journal lacks %q:\n%s", want, journal)
		}
	}
}

// validatorRunner answers the validator, whose argv holds a random temp path.
type validatorRunner struct {
	ok    bool
	inner Runner
}

func (v validatorRunner) Run(ctx context.Context, c Cmd) ([]byte, error) {
	if len(c.Argv) > 0 && c.Argv[0] == "sshd" {
		if _, err := os.Stat(c.Argv[len(c.Argv)-1]); err != nil {
			return nil, &CmdError{Argv: c.Argv, ExitCode: 1, Err: err}
		}
		if !v.ok {
			return nil, &CmdError{Argv: c.Argv, ExitCode: 255, Output: "line 1: Bad configuration option: Nonsense", Err: errors.New("exit status 255")}
		}
		return nil, nil
	}
	return v.inner.Run(ctx, c)
}

func TestWriteFileValidatorRejectsLeavesOldFile(t *testing.T) {
	h, r := newTestHost(t, false)
	h.Runner = validatorRunner{ok: false, inner: r}
	p := "/etc/ssh/sshd_config.d/00-x.conf"
	os.MkdirAll(filepath.Dir(h.Path(p)), 0o755)
	os.WriteFile(h.Path(p), []byte("old\n"), 0o644)
	err := h.WriteFile(context.Background(), p, []byte("Nonsense\n"), WriteOpts{Validate: []string{"sshd", "-t", "-f", "%s"}})
	if err == nil || !strings.Contains(err.Error(), "Bad configuration option") || !strings.Contains(err.Error(), "exit status 255") {
		t.Fatalf("want validator error with its output and status, got %v", err)
	}
	got, _ := os.ReadFile(h.Path(p))
	if string(got) != "old\n" {
		t.Fatalf("old file changed: %q", got)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(h.Path(p)), ".*tmp*"))
	if len(left) != 0 {
		t.Fatalf("temp files left behind: %v", left)
	}
}

func TestDryRunRefusesEveryChange(t *testing.T) {
	h, r := newTestHost(t, true)
	ctx := context.Background()
	if _, err := h.Exec(ctx, "systemctl", "reload", "ssh.service"); err != nil {
		t.Fatal(err)
	}
	if err := h.WriteFile(ctx, "/etc/x.conf", []byte("x"), WriteOpts{}); err != nil {
		t.Fatal(err)
	}
	if err := h.MkdirAll("/home/admin/.openclaw", 0o700, -1, -1); err != nil {
		t.Fatal(err)
	}
	ipt, _ := h.IPTables()
	if err := ipt.Append("filter", "FORWARD", "-j", "DROP"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Dial(ctx, "tcp", "192.0.2.1:443", time.Second); !errors.Is(err, ErrDryRun) {
		t.Fatalf("probe to another host was not refused: %v", err)
	}
	if err := h.SaveState("state.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if calls := r.CallsSnapshot(); len(calls) != 0 {
		t.Fatalf("dry run ran commands: %v", calls)
	}
	if _, err := os.Stat(h.Path("/etc/x.conf")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("dry run wrote a file")
	}
	if _, err := os.Stat(h.Path("/home/admin/.openclaw")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("dry run made a directory")
	}
	if es, _ := os.ReadDir(h.StateDir); len(es) != 0 {
		t.Fatalf("dry run wrote to the state dir: %v", es)
	}
	fake, _ := h.IPTablesFactory()
	if rules, _ := fake.List("filter", "FORWARD"); len(rules) != 1 {
		t.Fatalf("dry run changed iptables: %v", rules)
	}
	want := []string{"would run: systemctl reload ssh.service", "would write: /etc/x.conf", "would create directory: /home/admin/.openclaw", "would run: iptables -t filter -A FORWARD -j DROP", "would probe: tcp 192.0.2.1:443"}
	got := h.Would()
	if len(got) != len(want) {
		t.Fatalf("would = %q", got)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("would[%d] = %q, want prefix %q", i, got[i], want[i])
		}
	}
}

func TestSecretsNeverReachJournal(t *testing.T) {
	h, r := newTestHost(t, false)
	secret := "tok-5f1e0c0ffee1234567890"
	h.AddSecret(secret)
	r.Set("docker compose up -d --env TOKEN="+secret, FakeResponse{Exit: 1, Stderr: "bad token " + secret})
	h.Exec(context.Background(), "docker", "compose", "up", "-d", "--env", "TOKEN="+secret)
	h.WriteFile(context.Background(), "/opt/openclaw/.env", []byte("TOKEN="+secret+"\n"), WriteOpts{Perm: 0o600, ForcePerm: true})
	j, _ := os.ReadFile(filepath.Join(h.StateDir, "journal.log"))
	if strings.Contains(string(j), secret) || !strings.Contains(string(j), "<redacted>") {
		t.Fatalf("journal:\n%s", j)
	}
	st, _ := os.Stat(h.Path("/opt/openclaw/.env"))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf(".env mode = %v", st.Mode())
	}
}

func TestCmdErrorCarriesArgvStatusOutput(t *testing.T) {
	_, err := ExecRunner{}.Run(context.Background(), Cmd{Argv: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}})
	var ce *CmdError
	if !errors.As(err, &ce) || ce.ExitCode != 3 || !strings.Contains(err.Error(), `"sh -c echo out; echo err >&2; exit 3"`) ||
		!strings.Contains(err.Error(), "err") || !strings.Contains(err.Error(), "out") {
		t.Fatalf("err = %v", err)
	}
	out, err := ExecRunner{}.Run(context.Background(), Cmd{Argv: []string{"sh", "-c", "echo $LC_ALL"}})
	if err != nil || strings.TrimSpace(string(out)) != "C" {
		t.Fatalf("LC_ALL not C: %q %v", out, err)
	}
	_, err = ExecRunner{}.Run(context.Background(), Cmd{Argv: []string{"sleep", "5"}, Timeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("timeout err = %v", err)
	}
	var lines []string
	ExecRunner{}.Run(context.Background(), Cmd{Argv: []string{"sh", "-c", "printf 'a\\rb\\nc'"}, Output: func(l string) { lines = append(lines, l) }})
	if strings.Join(lines, "|") != "a|b|c" {
		t.Fatalf("progress lines = %q", lines)
	}
}

func TestParseIPTablesVersion(t *testing.T) {
	for in, want := range map[string]Backend{
		"iptables v1.8.9 (nf_tables)\n": {"1.8.9", "nf_tables"},
		"iptables v1.8.9 (legacy)":      {"1.8.9", "legacy"},
		"iptables v1.6.1":               {"1.6.1", "legacy"},
	} {
		got, err := ParseIPTablesVersion(in)
		if err != nil || got != want {
			t.Errorf("%q → %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "ip6tables-restore", "iptables v1.8.9 (weird)"} {
		if _, err := ParseIPTablesVersion(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestFakeIPTablesBehavesLikeIPTables(t *testing.T) {
	f := NewFakeIPTables()
	if err := f.NewChain("filter", "DOCKER-USER"); err != nil {
		t.Fatal(err)
	}
	f.Append("filter", "DOCKER-USER", "-d", "10.0.0.0/8", "-j", "DROP")
	f.Insert("filter", "DOCKER-USER", 1, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "RETURN")
	got, _ := f.List("filter", "DOCKER-USER")
	want := []string{"-N DOCKER-USER", "-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN", "-A DOCKER-USER -d 10.0.0.0/8 -j DROP"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("list = %q", got)
	}
	if err := f.Delete("filter", "DOCKER-USER", "-j", "ACCEPT"); err == nil {
		t.Fatal("deleting a missing rule succeeded")
	}
	if _, err := f.List("filter", "NOPE"); err == nil {
		t.Fatal("listing a missing chain succeeded")
	}
}

func TestTraceRunnerPrintsEachCommandRedacted(t *testing.T) {
	h := NewFakeHost(t.TempDir(), t.TempDir(), NewFakeRunner(map[string]string{"ufw status": "Status: active\n"}), false)
	h.AddSecret("s3cr3t-value-123")
	var b strings.Builder
	h.Trace(&b)
	if out, err := h.Read(context.Background(), "ufw", "status"); err != nil || string(out) != "Status: active\n" {
		t.Fatalf("read through the trace: %q %v", out, err)
	}
	_, _ = h.Read(context.Background(), "echo", "s3cr3t-value-123")
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "exit 0: ufw status") || !strings.Contains(lines[1], "exit 127: echo <redacted>") {
		t.Fatalf("trace:\n%s", b.String())
	}
}
