package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"openclaw-harden/steps"
	"openclaw-harden/system"
)

var errHelp = errors.New("help shown")

// opts are the flags; every command accepts the global ones (--dry-run, --answers, --state-dir).
type opts struct {
	dryRun   bool
	answers  string
	stateDir string
	step     int // -1: all
	json     bool
	yes      bool
	out      string
	args     []string // positionals after the command
	cmd      string
}

type command struct {
	name    string
	usage   string
	summary string
	example string
	flags   []string // command-specific flags it accepts, besides the global ones
	run     func(ctx context.Context, o *opts, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"plan", "plan [--answers F] [--step N]", "show every generated artifact and its diff; changes nothing",
			"openclaw-harden plan --answers answers.yaml --step 1", []string{"step"}, cmdPlan},
		{"apply", "apply --answers F --yes [--step N]", "apply the plan headless; stops at the first failed verification",
			"openclaw-harden apply --answers answers.yaml --yes --step 1", []string{"step", "yes"}, cmdApply},
		{"verify", "verify [--answers F] [--step N] [--json]", "run the verification checks only (exit 1 on any failure)",
			"openclaw-harden verify --json > verify.json", []string{"step", "json"}, cmdVerify},
		{"audit", "audit snapshot [--out F] | audit diff [A B]", "take a structured snapshot of the system, or diff two",
			"openclaw-harden audit snapshot --out /tmp/now.json && openclaw-harden audit diff", []string{"out", "json"}, cmdAudit},
		{"render", "render ARTIFACT [--answers F]", "print one generated artifact to stdout (" + strings.Join(artifactNames(), ", ") + ")",
			"openclaw-harden render proxmox-fw --answers answers.yaml > 100.fw", nil, cmdRender},
		{"check", "check KIND FILE", "validate a file you already have (" + strings.Join(checkKinds(), ", ") + "); findings as FILE:LINE: message",
			"openclaw-harden check proxmox-fw /etc/pve/firewall/100.fw", nil, cmdCheck},
		{"report", "report [--answers F]", "run the verification matrix and write a Markdown report (state dir and stdout)",
			"openclaw-harden report > hardening-report.md", nil, cmdReport},
		{"rollback", "rollback [--step N]", "restore the files a step changed (or every step's) from the backups",
			"openclaw-harden rollback --step 2", []string{"step", "yes"}, cmdRollback},
	}
}

func topUsage(w io.Writer) {
	fmt.Fprint(w, `openclaw-harden: harden the Debian VM that hosts OpenClaw (Steps 0-8 of the profile), and prove it.

Usage:
  openclaw-harden [--dry-run] [--answers F] [--state-dir D]   the wizard; resumes where the last run stopped
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  openclaw-harden %-42s %s\n", c.usage, c.summary)
	}
	fmt.Fprint(w, `
Global flags (every command and the wizard):
  --dry-run        change nothing: no file is written, no state-changing command runs, no probe leaves this host
  --answers F      the answers file (YAML); every field has the profile's default except admin_source
  --state-dir D    state, audits, backups and journal (default /var/lib/openclaw-harden, env OPENCLAW_HARDEN_STATE_DIR)

Exit codes: 0 all good; 1 a verification or check failed; 2 usage or environment error.
Run "openclaw-harden COMMAND --help" for a command's flags and an example.

Example:
  sudo openclaw-harden --dry-run
`)
}

func cmdUsage(w io.Writer, c command) {
	fmt.Fprintf(w, "Usage: openclaw-harden %s\n\n%s.\n\nFlags:\n", c.usage, strings.ToUpper(c.summary[:1])+c.summary[1:])
	desc := map[string]string{
		"step": "  --step N         only step N (0-8)",
		"yes":  "  --yes            do it without asking (required for headless apply)",
		"json": "  --json           machine-readable output (schema in README.md)",
		"out":  "  --out F          write the snapshot to F (\"-\" for stdout) instead of the state dir",
	}
	for _, f := range c.flags {
		fmt.Fprintln(w, desc[f])
	}
	fmt.Fprint(w, "  --dry-run        change nothing (also: no probe leaves this host)\n  --answers F      the answers file\n  --state-dir D    the state directory\n")
	fmt.Fprintf(w, "\nExample:\n  %s\n", c.example)
}

// parseArgs accepts flags anywhere on the line, as operators type them.
// Help goes to helpW (stdout) so `openclaw-harden --help | less` works.
func parseArgs(args []string, helpW io.Writer) (*opts, error) {
	o := &opts{step: -1}
	fset := flag.NewFlagSet("openclaw-harden", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	fset.BoolVar(&o.dryRun, "dry-run", false, "")
	fset.StringVar(&o.answers, "answers", "", "")
	fset.StringVar(&o.stateDir, "state-dir", "", "")
	step := fset.String("step", "", "")
	fset.BoolVar(&o.json, "json", false, "")
	fset.BoolVar(&o.yes, "yes", false, "")
	fset.StringVar(&o.out, "out", "", "")
	help := false
	fset.BoolVar(&help, "help", false, "")
	fset.BoolVar(&help, "h", false, "")
	var pos []string
	for {
		if err := fset.Parse(args); err != nil {
			msg := err.Error()
			if rest, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
				msg = "unknown flag " + rest
			}
			return nil, usagef("%s; run \"openclaw-harden --help\" for the flags", msg)
		}
		args = fset.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) > 0 && pos[0] == "help" {
		help, pos = true, pos[1:]
	}
	if len(pos) > 0 {
		o.cmd, o.args = pos[0], pos[1:]
	}
	if help {
		if o.cmd == "" {
			topUsage(helpW)
			return nil, errHelp
		}
		for _, c := range commands() {
			if c.name == o.cmd {
				cmdUsage(helpW, c)
				return nil, errHelp
			}
		}
		return nil, usagef("unknown command %q; run \"openclaw-harden --help\" for the list", o.cmd)
	}
	if *step != "" {
		n, err := strconv.Atoi(*step)
		if err != nil || n < 0 || n > 8 {
			return nil, usagef("--step %q is not a step number; give 0 to 8", *step)
		}
		o.step = n
	}
	if o.stateDir == "" {
		o.stateDir = os.Getenv("OPENCLAW_HARDEN_STATE_DIR")
	}
	if o.stateDir == "" {
		o.stateDir = system.DefaultStateDir
	}
	return o, nil
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseArgs(args, stdout)
	if err != nil {
		return err
	}
	if o.cmd == "" {
		return runWizard(ctx, o, stdout, stderr)
	}
	for _, c := range commands() {
		if c.name != o.cmd {
			continue
		}
		if err := allowedFlags(o, c); err != nil {
			return err
		}
		return c.run(ctx, o, stdout, stderr)
	}
	return usagef("unknown command %q; the commands are plan, apply, verify, audit, report, render, check and rollback", o.cmd)
}

func allowedFlags(o *opts, c command) error {
	has := func(f string) bool {
		for _, x := range c.flags {
			if x == f {
				return true
			}
		}
		return false
	}
	switch {
	case o.step >= 0 && !has("step"):
		return usagef("%s does not take --step", c.name)
	case o.json && !has("json"):
		return usagef("%s does not take --json", c.name)
	case o.yes && !has("yes"):
		return usagef("%s does not take --yes", c.name)
	case o.out != "" && !has("out"):
		return usagef("%s does not take --out", c.name)
	}
	return nil
}

// needsRoot explains which parts need root when running as a normal user.
const needsRootParts = "sshd -T, iptables, ufw status, the processes behind listening sockets and the state directory"

// environment checks what a system-touching command needs: Linux, root (unless --dry-run), the basic tools.
func environment(o *opts, stderr io.Writer) error {
	if err := requireLinux(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		if !o.dryRun {
			return usagef("this must run as root to read and change the system; run it with sudo, or add --dry-run to see the plan as %s", currentUser())
		}
		fmt.Fprintf(stderr, "openclaw-harden: not root: dry run with what this user can read; %s need root for the complete view.\n", needsRootParts)
	}
	for _, tool := range []string{"ip", "ss"} {
		if _, err := system.LookPath(tool); err != nil {
			return usagef("the %q command is missing; install iproute2 (apt-get install iproute2) and run again", tool)
		}
	}
	return nil
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "uid " + strconv.Itoa(os.Getuid())
}

// loadAnswers reads the answers file (or the defaults, or the answers saved in state.json).
func loadAnswers(o *opts, st *steps.State) (steps.Answers, error) {
	if o.answers == "" {
		if st != nil && st.Answers != nil {
			return *st.Answers, nil
		}
		return steps.Defaults(), nil
	}
	data, err := os.ReadFile(o.answers)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return steps.Answers{}, usagef("--answers %s: no such file", o.answers)
		}
		return steps.Answers{}, usagef("--answers %s: %v", o.answers, err)
	}
	a, err := steps.ParseAnswers(o.answers, data)
	if err != nil {
		return a, usageError{err.Error()}
	}
	return a, nil
}

// proposeAdminSource is the SSH client address the operator is connected from, if any.
func proposeAdminSource(getenv func(string) string) string {
	f := strings.Fields(getenv("SSH_CONNECTION"))
	if len(f) >= 1 {
		return f[0]
	}
	return ""
}

// openSession builds the Host, loads state and answers.
func openSession(o *opts, stderr io.Writer) (*steps.Session, error) {
	h := system.NewHost(o.stateDir, o.dryRun)
	if v := os.Getenv(system.TraceEnv); v != "" && v != "0" && o.cmd != "" { // the wizard owns the terminal
		h.Trace(stderr)
	}
	if err := h.ArmCrashPoint(); err != nil {
		return nil, usageError{err.Error()}
	}
	st, err := steps.LoadState(h)
	if err != nil {
		if !o.dryRun {
			return nil, usageError{err.Error()}
		}
		fmt.Fprintf(stderr, "openclaw-harden: %v; dry run goes on without saved state.\n", err)
		st = nil
	}
	a, err := loadAnswers(o, st)
	if err != nil {
		return nil, err
	}
	return steps.NewSession(h, a, st), nil
}

// lockSession takes the state directory's lock for a run that changes the machine (see system.Host.Lock).
func lockSession(s *steps.Session) (func(), error) {
	release, err := s.Host.Lock()
	if err != nil {
		return nil, usageError{err.Error()}
	}
	return release, nil
}

// selected returns the steps a command works on.
func selected(s *steps.Session, o *opts) []steps.Step {
	if o.step < 0 {
		return s.Steps
	}
	for _, st := range s.Steps {
		if st.ID() == o.step {
			return []steps.Step{st}
		}
	}
	return nil
}
