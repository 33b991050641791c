package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"openclaw-harden/steps"
	"openclaw-harden/system"
)

// printer writes plain text, with colour only on a terminal without NO_COLOR.
type printer struct {
	w     io.Writer
	color bool
}

func newPrinter(w io.Writer) printer {
	return printer{w: w, color: isTerminal(w) && os.Getenv("NO_COLOR") == ""}
}

func (p printer) f(format string, args ...any) { fmt.Fprintf(p.w, format, args...) }

func (p printer) paint(code, s string) string {
	if !p.color {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (p printer) diff(d string) {
	for _, l := range strings.Split(strings.TrimRight(d, "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
			l = p.paint("1", l)
		case strings.HasPrefix(l, "+"):
			l = p.paint("32", l)
		case strings.HasPrefix(l, "-"):
			l = p.paint("31", l)
		case strings.HasPrefix(l, "@@"):
			l = p.paint("36", l)
		}
		p.f("    %s\n", l)
	}
}

func (p printer) plan(pl steps.Plan, err error) {
	p.f("%s\n", p.paint("1", fmt.Sprintf("Step %d: %s", pl.Step, pl.Title)))
	switch {
	case errors.Is(err, steps.ErrNotAvailable):
		p.f("  not available yet in this version: this step cannot be planned, applied or passed\n\n")
		return
	case err != nil:
		p.f("  cannot plan: %v\n\n", err)
		return
	case pl.Blocked != "":
		p.f("  %s %s\n", p.paint("31", "BLOCKED:"), pl.Blocked)
	}
	for _, n := range pl.Notes {
		p.f("  note: %s\n", n)
	}
	for _, c := range pl.Pending() {
		p.f("  %s %s\n", c.Action(), c.Target)
		if c.Warning != "" {
			p.f("    %s %s\n", p.paint("33", "warning:"), c.Warning)
		}
		p.diff(c.Diff())
	}
	p.f("  %s\n\n", pl.Summary())
}

func cmdPlan(ctx context.Context, o *opts, stdout, stderr io.Writer) error {
	if err := environment(o, stderr); err != nil {
		return err
	}
	s, err := openSession(o, stderr)
	if err != nil {
		return err
	}
	noteAdminSource(s, stderr)
	p := newPrinter(stdout)
	for _, st := range selected(s, o) {
		pl, err := planReadOnly(ctx, s, st)
		p.plan(pl, err)
	}
	return nil
}

// planReadOnly plans without recording anything: `plan` must leave state.json as it was.
func planReadOnly(ctx context.Context, s *steps.Session, st steps.Step) (steps.Plan, error) {
	return s.PlanReadOnly(ctx, st)
}

// noteAdminSource fills a missing admin_source for read-only commands from the SSH session, and says so.
func noteAdminSource(s *steps.Session, stderr io.Writer) {
	if s.Answers.AdminSource != "" {
		return
	}
	if prop := proposeAdminSource(s.Host.Getenv); prop != "" {
		s.Answers.AdminSource = prop
		fmt.Fprintf(stderr, "openclaw-harden: admin_source is not set; using this SSH session's client %s for the plan.\n", prop)
	}
}

func cmdApply(ctx context.Context, o *opts, stdout, stderr io.Writer) error {
	if o.answers == "" {
		return usagef("apply needs --answers FILE: headless runs use only answers written down")
	}
	if !o.yes {
		return usagef("apply changes the system without asking; add --yes to confirm, or run the wizard (no command) to review each step")
	}
	if err := environment(o, stderr); err != nil {
		return err
	}
	s, err := openSession(o, stderr)
	if err != nil {
		return err
	}
	release, err := lockSession(s)
	if err != nil {
		return err
	}
	defer release()
	if s.Answers.AdminSource == "" {
		hint := ""
		if prop := proposeAdminSource(s.Host.Getenv); prop != "" {
			hint = fmt.Sprintf(" (this SSH session comes from %s)", prop)
		}
		return usagef("%s: admin_source: has no default; set it to the admin machine's address%s", o.answers, hint)
	}
	p := newPrinter(stdout)
	s.Host.OnJournal(func(line string) { p.f("    %s\n", line) })
	for _, st := range selected(s, o) {
		pl, err := s.Plan(ctx, st)
		p.plan(pl, err)
		if err != nil {
			return failedError{fmt.Sprintf("step %d: %v", st.ID(), err)}
		}
		if pl.Blocked != "" {
			return failedError{fmt.Sprintf("step %d: blocked: %s", st.ID(), pl.Blocked)}
		}
		if pl.Risk != "" {
			return failedError{fmt.Sprintf("step %d: needs the operator to accept a risk, which a headless run cannot: %s", st.ID(), pl.Risk)}
		}
		if !pl.Empty() {
			p.f("  applying…\n")
			if err := s.Apply(ctx, st, pl); err != nil {
				return failedError{fmt.Sprintf("step %d: apply failed: %v", st.ID(), err)}
			}
		}
		if o.dryRun {
			p.f("  dry run: step %d not applied, so it is not verified\n\n", st.ID())
			continue
		}
		checks := s.Verify(ctx, st)
		printChecks(p, st.ID(), checks)
		printSurvival(p, s, st.ID())
		if !steps.Passed(checks) {
			return failedError{fmt.Sprintf("step %d: verification failed; fix the findings above and run again (state is saved)", st.ID())}
		}
	}
	return nil
}

// printChecks prints one line per check. Checks sent from somewhere (Step 8's probes) are grouped under a
// heading per source, each line naming its target when the check's name does not already.
func printChecks(p printer, step int, cs []steps.Check) {
	groups := steps.GroupBySource(cs)
	if groups == nil {
		for _, c := range cs {
			p.check("  ", step, c)
		}
	}
	for _, g := range groups {
		ind := "  "
		if g.Heading != "" {
			ind = "    "
			head := g.Heading
			if g.NotRun != "" {
				head += " — " + g.NotRun
			}
			p.f("  %s\n", p.paint("1", head))
			if g.Hint != "" {
				p.f("    %s\n", g.Hint)
			}
		}
		for _, c := range g.Checks {
			p.check(ind, step, c)
		}
	}
	if len(cs) == 0 {
		p.f("  ✗ step %d: no checks ran\n", step)
	}
	p.f("\n")
}

// check prints "✓ step N name [→ target]: expected …, got … (why it failed)".
func (p printer) check(ind string, step int, c steps.Check) {
	mark := p.paint("32", "✓")
	switch {
	case !c.OK:
		mark = p.paint("31", "✗")
	case c.Skipped:
		mark = p.paint("33", "–")
	}
	name := c.Name
	if c.Target != "" && !strings.Contains(name, c.Target) {
		name += " → " + c.Target
	}
	p.f("%s%s step %d %s: expected %s, got %s", ind, mark, step, name, c.Expect, c.Got)
	if c.Reason != "" && !c.OK {
		p.f(" (%s)", c.Reason)
	}
	p.f("\n")
}

// verifyReport is the stable `verify --json` schema (documented in README.md).
type verifyReport struct {
	Version int          `json:"version"`
	Tool    string       `json:"tool"`
	Time    time.Time    `json:"time"`
	DryRun  bool         `json:"dry_run"`
	OK      bool         `json:"ok"`
	Steps   []stepReport `json:"steps"`
}

type stepReport struct {
	Step      int           `json:"step"`
	Title     string        `json:"title"`
	Available bool          `json:"available"`
	OK        bool          `json:"ok"`
	Checks    []steps.Check `json:"checks"`
	// Proven is set for steps whose rules must outlive a Docker restart and a reboot (Step 4): when a
	// passing verification first proved each, null when none has yet.
	Proven *provenReport `json:"proven,omitempty"`
}

type provenReport struct {
	DockerRestart *time.Time `json:"docker_restart"`
	Reboot        *time.Time `json:"reboot"`
}

func proven(s *steps.Session, id int) *provenReport {
	sv, ok := s.Survival(id)
	if !ok {
		return nil
	}
	return &provenReport{DockerRestart: sv.DockerRestart, Reboot: sv.Reboot}
}

// printSurvival says which restarts a Survivor step's rules were proven to outlive, and how to prove the
// others. It is not a check: nothing here can fail, it reports what passing verifications have seen.
func printSurvival(p printer, s *steps.Session, id int) {
	pr := proven(s, id)
	if pr == nil {
		return
	}
	p.f("  %s\n", p.paint("1", fmt.Sprintf("Step %d's rules after restarts (seen by passing verifications; not a check)", id)))
	for _, r := range []struct {
		what  string
		at    *time.Time
		prove string
	}{
		{"a Docker restart", pr.DockerRestart, steps.ProveDockerRestart(id)},
		{"a reboot", pr.Reboot, steps.ProveReboot(id)},
	} {
		if r.at != nil {
			p.f("    %s survived %s, proven at %s\n", p.paint("32", "✓"), r.what, r.at.UTC().Format(time.RFC3339))
			continue
		}
		p.f("    %s never proven to survive %s; to prove it: %s\n", p.paint("33", "?"), r.what, r.prove)
	}
	p.f("\n")
}

func cmdVerify(ctx context.Context, o *opts, stdout, stderr io.Writer) error {
	if err := environment(o, stderr); err != nil {
		return err
	}
	s, err := openSession(o, stderr)
	if err != nil {
		return err
	}
	if s.Host.Busy() {
		s.Host.KeepState = true
		fmt.Fprintln(stderr, "openclaw-harden: another run is changing this machine (it holds the lock); verifying anyway, without recording the results in state.json.")
	}
	noteAdminSource(s, stderr)
	rep := verifyReport{Version: 1, Tool: "openclaw-harden", Time: time.Now().UTC(), DryRun: o.dryRun, OK: true}
	p := newPrinter(stdout)
	for _, st := range selected(s, o) {
		cs := s.Verify(ctx, st)
		ok := steps.Passed(cs)
		rep.OK = rep.OK && ok
		rep.Steps = append(rep.Steps, stepReport{Step: st.ID(), Title: st.Title(), Available: steps.Available(st), OK: ok, Checks: cs,
			Proven: proven(s, st.ID())})
		if !o.json {
			p.f("%s\n", p.paint("1", fmt.Sprintf("Step %d: %s", st.ID(), st.Title())))
			printChecks(p, st.ID(), cs)
			printSurvival(p, s, st.ID())
		}
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
	if !rep.OK {
		var failed []string
		for _, sr := range rep.Steps {
			if !sr.OK {
				failed = append(failed, fmt.Sprint(sr.Step))
			}
		}
		return failedError{fmt.Sprintf("verification failed for step %s", strings.Join(failed, ", "))}
	}
	return nil
}

func cmdAudit(ctx context.Context, o *opts, stdout, stderr io.Writer) error {
	if len(o.args) == 0 {
		return usagef("audit needs \"snapshot\" or \"diff\"; e.g. openclaw-harden audit snapshot")
	}
	if err := environment(o, stderr); err != nil {
		return err
	}
	h := system.NewHost(o.stateDir, o.dryRun)
	switch o.args[0] {
	case "snapshot":
		if len(o.args) > 1 {
			return usagef("audit snapshot takes no arguments; use --out F to choose the file")
		}
		snap, err := steps.TakeSnapshot(ctx, h)
		if err != nil {
			return err
		}
		data, _ := json.MarshalIndent(snap, "", "  ")
		data = append(data, '\n')
		switch {
		case o.out == "-" || (o.dryRun && o.out == ""):
			if o.dryRun && o.out == "" {
				fmt.Fprintln(stderr, "openclaw-harden: dry run: the snapshot is printed, not saved")
			}
			_, err = stdout.Write(data)
			return err
		case o.out != "":
			if o.dryRun {
				fmt.Fprintf(stderr, "openclaw-harden: dry run: would write %s; printing the snapshot instead\n", o.out)
				_, err = stdout.Write(data)
				return err
			}
			if err := system.WriteAtomic(o.out, data, 0o600); err != nil {
				return usagef("--out %s: %v", o.out, err)
			}
			fmt.Fprintln(stdout, o.out)
			return nil
		}
		name, err := steps.SaveSnapshot(h, snap, "snapshot")
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, name)
		return nil
	case "diff":
		return auditDiff(ctx, h, o, stdout)
	}
	return usagef("audit %q: use \"audit snapshot\" or \"audit diff [A B]\"", o.args[0])
}

// auditDiff compares two snapshots: the files given, or the baseline with the latest (a fresh one if none).
func auditDiff(ctx context.Context, h *system.Host, o *opts, stdout io.Writer) error {
	var a, b steps.Snapshot
	var err error
	switch len(o.args) {
	case 3:
		if a, err = readSnapshotFile(o.args[1]); err != nil {
			return err
		}
		if b, err = readSnapshotFile(o.args[2]); err != nil {
			return err
		}
	case 1:
		base, latest, err := steps.LatestSnapshots(h)
		if err != nil {
			return err
		}
		if base == "" {
			return usagef("no baseline snapshot in %s/audits yet; run Step 1 (apply --step 1) or give two files: audit diff A B", h.StateDir)
		}
		if a, err = steps.LoadSnapshot(h, base); err != nil {
			return err
		}
		if latest == "" || latest == base {
			if b, err = steps.TakeSnapshot(ctx, h); err != nil {
				return err
			}
		} else if b, err = steps.LoadSnapshot(h, latest); err != nil {
			return err
		}
	default:
		return usagef("audit diff takes two snapshot files or none (then: the baseline against the latest)")
	}
	d := steps.DiffSnapshots(a, b)
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"version": 1, "from": a.Taken, "to": b.Taken, "changes": d})
	}
	fmt.Fprintf(stdout, "Audit diff: %s → %s\n%s\n", a.Taken.Format(time.RFC3339), b.Taken.Format(time.RFC3339), steps.RenderDiff(d))
	return nil
}

func readSnapshotFile(path string) (steps.Snapshot, error) {
	var s steps.Snapshot
	data, err := os.ReadFile(path)
	if err != nil {
		return s, usagef("%s: %v", path, err)
	}
	if err := json.Unmarshal(data, &s); err != nil || s.Version != 1 {
		return s, usagef("%s is not an audit snapshot (JSON with \"version\": 1) written by this tool", path)
	}
	return s, nil
}

func cmdRollback(ctx context.Context, o *opts, stdout, stderr io.Writer) error {
	if len(o.args) > 0 {
		return usagef("rollback takes no arguments; use --step N for one step")
	}
	if err := environment(o, stderr); err != nil {
		return err
	}
	s, err := openSession(o, stderr)
	if err != nil {
		return err
	}
	release, err := lockSession(s)
	if err != nil {
		return err
	}
	defer release()
	paths, err := s.Rollback(o.step)
	for _, p := range paths {
		fmt.Fprintf(stdout, "restored %s\n", p)
	}
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		which := "any step"
		if o.step >= 0 {
			which = fmt.Sprintf("step %d", o.step)
		}
		fmt.Fprintf(stdout, "nothing to roll back for %s: every file it changed is already as its backup in %s/backups\n", which, o.stateDir)
	}
	return nil
}

// artifacts maps `render` names to their generators; each step registers its own as it is built.
var artifacts = map[string]func(steps.Answers) ([]byte, error){}

func artifactNames() []string {
	return []string{"sshd-dropin", "ufw-script", "after-rules", "proxmox-fw", "proxmox-cluster-fw", "daemon-json", "compose", "openclaw-config"}
}

func cmdRender(ctx context.Context, o *opts, stdout, stderr io.Writer) error {
	if len(o.args) != 1 {
		return usagef("render needs one artifact name: %s", strings.Join(artifactNames(), ", "))
	}
	name := o.args[0]
	known := false
	for _, n := range artifactNames() {
		known = known || n == name
	}
	if !known {
		return usagef("render %q: unknown artifact; the artifacts are %s", name, strings.Join(artifactNames(), ", "))
	}
	gen, ok := artifacts[name]
	if !ok {
		return usagef("render %s: not available yet in this version (its step is not implemented)", name)
	}
	a, err := loadAnswers(o, nil)
	if err != nil {
		return err
	}
	out, err := gen(a)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

// checkers maps `check` kinds to validators returning findings as "FILE:LINE: message".
var checkers = map[string]func(name string, data []byte) (findings []string, failed bool){}

func checkKinds() []string { return []string{"proxmox-fw", "compose", "daemon-json", "after-rules"} }

func cmdCheck(ctx context.Context, o *opts, stdout, stderr io.Writer) error {
	if len(o.args) != 2 {
		return usagef("check needs a kind and a file: check KIND FILE (kinds: %s)", strings.Join(checkKinds(), ", "))
	}
	kind, file := o.args[0], o.args[1]
	chk, ok := checkers[kind]
	if !ok {
		for _, k := range checkKinds() {
			if k == kind {
				return usagef("check %s: not available yet in this version", kind)
			}
		}
		return usagef("check %q: unknown kind; the kinds are %s", kind, strings.Join(checkKinds(), ", "))
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return usagef("%s: %v", file, err)
	}
	findings, failed := chk(file, data)
	for _, f := range findings {
		fmt.Fprintln(stdout, f)
	}
	if failed {
		return failedError{}
	}
	return nil
}
