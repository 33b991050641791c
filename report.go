package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"openclaw-harden/steps"
	"openclaw-harden/system"
)

// LivenessFile is the record of a liveness proof in the state dir: the lab's lab.Liveness as JSON (fields
// Taken, Probes[].From, Target, MustFail, OK, Detail). A harness or an operator who proved every must-fail
// target answered before hardening puts it there; the report cites it for each must-fail probe.
const LivenessFile = "liveness.json"

// livenessRecord mirrors lab.Liveness (package lab is test-only and is not linked into the tool).
type livenessRecord struct {
	Taken  time.Time
	Probes []struct {
		From     string
		Target   string
		MustFail bool
		OK       bool
		Detail   string
	}
}

// cmdReport runs Step 8 and writes the report: `openclaw-harden report [--answers F]`. Exit 1 when a check
// failed (the report is written anyway).
func cmdReport(ctx context.Context, o *opts, stdout, stderr io.Writer) error {
	if len(o.args) > 0 {
		return usagef("report takes no arguments; it writes the report to the state dir and prints it")
	}
	if err := environment(o, stderr); err != nil {
		return err
	}
	s, err := openSession(o, stderr)
	if err != nil {
		return err
	}
	noteAdminSource(s, stderr)
	st, _ := steps.ByID(8)
	checks := s.Verify(ctx, st)
	saved, err := writeReport(ctx, s, checks, time.Now().UTC(), stdout)
	if err != nil {
		return err
	}
	switch {
	case saved != "":
		fmt.Fprintf(stderr, "openclaw-harden: report saved to %s\n", saved)
	case o.dryRun:
		fmt.Fprintln(stderr, "openclaw-harden: dry run: the report is printed, not saved")
	}
	if !steps.Passed(checks) {
		return failedError{"verification failed: see the report's matrix"}
	}
	return nil
}

// writeReport renders the Markdown report (steps' status, the Step 8 matrix grouped by source, which
// must-fail probes were proven live before hardening, the before/after audit diff), saves it as
// <state dir>/reports/report-<UTC time>.md (mode 0600; not in dry-run) and writes it to w. It returns the
// saved path ("" in dry-run).
func writeReport(ctx context.Context, s *steps.Session, checks []steps.Check, now time.Time, w io.Writer) (string, error) {
	h := s.Host
	var b bytes.Buffer
	passed, failed := 0, 0
	for _, c := range checks {
		if c.OK {
			passed++
		} else {
			failed++
		}
	}
	host, _ := os.Hostname()
	verdict := "**PASS**"
	if failed > 0 || len(checks) == 0 {
		verdict = "**FAIL**"
	}
	fmt.Fprintf(&b, "# openclaw-harden report\n\n")
	fmt.Fprintf(&b, "- host: %s\n- generated: %s\n- verification matrix: %s, %d of %d checks passed\n", md(host), now.Format(time.RFC3339), verdict, passed, len(checks))
	if h.DryRun {
		fmt.Fprintf(&b, "- dry run: probes to other hosts were listed, not sent; their checks cannot pass\n")
	}

	fmt.Fprintf(&b, "\n## Steps\n\n| step | title | status | since | note |\n| --- | --- | --- | --- | --- |\n")
	for _, st := range s.Steps {
		ss := s.Status(st.ID())
		when := ""
		if !ss.Updated.IsZero() {
			when = ss.Updated.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s |\n", st.ID(), md(st.Title()), md(string(ss.Status)), when, md(ss.Message))
	}

	fmt.Fprintf(&b, "\n## Verification matrix (Step 8)\n")
	for _, src := range []struct{ key, title string }{
		{"container", "From inside the gateway container"},
		{"vm", "On the VM"},
		{"lan", "From another LAN host"},
		{"", "Other checks"},
	} {
		var rows []steps.Check
		for _, c := range checks {
			if c.Source == src.key {
				rows = append(rows, c)
			}
		}
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n### %s\n\n|  | check | target | expected | got | why not / note | ms |\n| --- | --- | --- | --- | --- | --- | ---: |\n", src.title)
		for _, c := range rows {
			mark := "✓"
			switch {
			case !c.OK:
				mark = "✗"
			case c.Skipped:
				mark = "– (not run)"
			}
			ms := ""
			if c.DurationMS > 0 {
				ms = fmt.Sprint(c.DurationMS)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", mark, md(c.Name), md(c.Target), md(c.Expect), md(c.Got), md(c.Reason), ms)
		}
	}

	fmt.Fprintf(&b, "\n## Must-fail probes: proven live before hardening?\n\n")
	live, lerr := loadLiveness(h)
	switch {
	case lerr != nil:
		fmt.Fprintf(&b, "The liveness record %s cannot be read (%s).\n\n", md(filepath.Join(h.StateDir, LivenessFile)), md(lerr.Error()))
	case live == nil:
		fmt.Fprintf(&b, "No liveness record (%s). Without one, a must-fail probe that failed shows the target was not reached, "+
			"not that a firewall stopped it: the target may simply not exist. Prove each target answers before hardening and save the record there.\n\n",
			md(filepath.Join(h.StateDir, LivenessFile)))
	default:
		fmt.Fprintf(&b, "Liveness record taken %s (%d probes).\n\n", live.Taken.UTC().Format(time.RFC3339), len(live.Probes))
	}
	fmt.Fprintf(&b, "| probe | from | after hardening | answered before hardening | evidence |\n| --- | --- | --- | --- | --- |\n")
	n := 0
	for _, c := range checks {
		if c.Expect != steps.ExpectMustFail {
			continue
		}
		n++
		before, evidence := "not proven", "no liveness record for this target"
		if live != nil {
			if ok, ev := provenLive(live, c); ok {
				before, evidence = "yes", ev
			} else if ev != "" {
				before, evidence = "NO", ev
			}
		}
		after := "failed as required"
		if !c.OK {
			after = "NOT blocked"
		}
		fmt.Fprintf(&b, "| %s | %s | %s: %s | %s | %s |\n", md(c.Name), md(c.Source), after, md(c.Got), before, md(evidence))
	}
	if n == 0 {
		fmt.Fprintf(&b, "| (no must-fail probes ran) | | | | |\n")
	}

	fmt.Fprintf(&b, "\n## Audit: before → after\n\n")
	fmt.Fprint(&b, auditSection(ctx, h))

	data := b.Bytes()
	saved := ""
	if !h.DryRun {
		name := filepath.Join("reports", "report-"+now.Format("20060102T150405Z")+".md")
		if err := h.SaveState(name, data); err != nil {
			return "", fmt.Errorf("saving the report: %w", err)
		}
		saved = filepath.Join(h.StateDir, name)
	}
	_, err := w.Write([]byte(h.Redact(string(data))))
	return saved, err
}

// auditSection is the baseline-to-latest audit diff (a fresh snapshot when the latest is the baseline).
func auditSection(ctx context.Context, h *system.Host) string {
	base, latest, err := steps.LatestSnapshots(h)
	switch {
	case err != nil:
		return "The audit snapshots cannot be listed: " + md(err.Error()) + "\n"
	case base == "":
		return "No baseline snapshot (Step 1 was not applied): there is nothing to compare the hardened system with.\n"
	}
	a, err := steps.LoadSnapshot(h, base)
	if err != nil {
		return "The baseline snapshot cannot be read: " + md(err.Error()) + "\n"
	}
	var bs steps.Snapshot
	what := latest
	if latest == "" || latest == base {
		what = "a snapshot taken now"
		bs, err = steps.TakeSnapshot(ctx, h)
	} else {
		bs, err = steps.LoadSnapshot(h, latest)
	}
	if err != nil {
		return "The latest snapshot cannot be read: " + md(err.Error()) + "\n"
	}
	d := steps.DiffSnapshots(a, bs)
	return fmt.Sprintf("Baseline %s (%s) → %s (%s): %d change(s).\n\n```diff\n%s\n```\n", md(base), a.Taken.UTC().Format(time.RFC3339),
		md(what), bs.Taken.UTC().Format(time.RFC3339), len(d), strings.TrimRight(h.Redact(steps.RenderDiff(d)), "\n"))
}

func loadLiveness(h *system.Host) (*livenessRecord, error) {
	data, err := h.LoadState(LivenessFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r livenessRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("not a liveness record: %w", err)
	}
	return &r, nil
}

// provenLive finds the liveness probe for a check's target (host:port) from the same vantage point: the
// container, the VM, or a LAN host (any other name in the record). ok reports a probe that answered; a
// probe that did not answer is returned as evidence with ok false.
func provenLive(r *livenessRecord, c steps.Check) (ok bool, evidence string) {
	want := probeHostPort(c.Target)
	if want == "" {
		return false, ""
	}
	for _, p := range r.Probes {
		if probeHostPort(p.Target) != want || livenessSource(p.From) != c.Source {
			continue
		}
		ev := fmt.Sprintf("%s from %s at %s: %s", p.Target, p.From, r.Taken.UTC().Format(time.RFC3339), p.Detail)
		if p.OK {
			return true, ev
		}
		evidence = ev + " (did not answer)"
	}
	return false, evidence
}

func livenessSource(from string) string {
	switch from {
	case "container", "vm":
		return from
	}
	return "lan"
}

// probeHostPort reduces "http://10.0.0.1/", "tcp 192.168.1.2:22", "tcp 203.0.113.10:443 (HTTPS server)" and
// "192.168.1.10:22" to host:port.
func probeHostPort(t string) string {
	t = strings.TrimSpace(t)
	if i := strings.Index(t, " ("); i >= 0 {
		t = t[:i]
	}
	t = strings.TrimPrefix(t, "tcp ")
	if strings.Contains(t, "://") {
		u, err := url.Parse(t)
		if err != nil {
			return ""
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		return net.JoinHostPort(u.Hostname(), port)
	}
	if _, _, err := net.SplitHostPort(t); err == nil {
		return t
	}
	return ""
}

// md makes text safe inside a Markdown table cell.
func md(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.Join(strings.Fields(s), " ")
}
