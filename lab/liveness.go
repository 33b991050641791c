package lab

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Probe is one liveness probe: from a lab vantage point to a target, and whether it answered.
type Probe struct {
	From     string        // "vm", "container", or a lab namespace
	Target   string        // e.g. "http://192.168.1.2:80", "tcp 192.168.1.10:22", "dns api.telegram.org @203.0.113.53"
	MustFail bool          // true for targets that must fail after hardening (so they must answer now)
	OK       bool          // it answered as expected before hardening
	Detail   string        // what came back, or why not
	Took     time.Duration // how long the probe took
}

// Liveness is the record of a liveness proof, for reports to cite.
type Liveness struct {
	Taken  time.Time
	Probes []Probe
}

// Failed lists the probes that did not answer.
func (r *Liveness) Failed() []Probe {
	var f []Probe
	for _, p := range r.Probes {
		if !p.OK {
			f = append(f, p)
		}
	}
	return f
}

// String renders the record as one line per probe.
func (r *Liveness) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "liveness proof taken %s (every target answers before hardening):\n", r.Taken.UTC().Format(time.RFC3339))
	for _, p := range r.Probes {
		status := "answers"
		if !p.OK {
			status = "NO ANSWER"
		}
		kind := "must-work"
		if p.MustFail {
			kind = "must-fail-later"
		}
		fmt.Fprintf(&b, "  %-9s %-15s %-55s %-9s %5.1fs  %s\n", p.From, kind, p.Target, status, p.Took.Seconds(), p.Detail)
	}
	return b.String()
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// MustFailHTTP are the targets that must be unreachable from the VM and its containers after hardening;
// each has an HTTP listener in the lab, so ProveLiveness shows they answer before.
var MustFailHTTP = []string{
	"http://" + RouterLAN + "/",
	"http://" + LANHostAddr + "/",
	"http://" + LANHostAddr + ":18789/",
	"http://" + PrivAddr + "/",
	"http://" + MetadataAddr + "/",
}

// ProveLiveness probes, before any hardening, every target that must fail later (LAN hosts, 10.0.0.1,
// 169.254.169.254, LAN→VM ports) from the VM, from a container on the VM, and from the LAN host, plus the
// targets that must keep working (lab DNS, HTTPS with the lab CA, the apt mirror). It fails t if any does
// not answer, so that after hardening a failed probe means the firewall dropped it.
func ProveLiveness(t testing.TB, l *Lab) *Liveness {
	t.Helper()
	done := l.Phase("liveness proof")
	rec := &Liveness{Taken: time.Now()}
	add := func(p Probe) { rec.Probes = append(rec.Probes, p) }

	vm := func(target string, mustFail bool, cmd string, check func(out string) bool) {
		t0 := time.Now()
		o, e, code, err := l.RunTimeout(cmd, nil, 2*time.Minute)
		p := Probe{From: "vm", Target: target, MustFail: mustFail, Took: time.Since(t0)}
		p.OK = err == nil && code == 0 && check(o)
		p.Detail = oneLine(fmt.Sprintf("exit %d %s %s", code, o, e), 90)
		if err != nil {
			p.Detail = err.Error()
		}
		add(p)
	}
	status200 := func(o string) bool { return strings.TrimSpace(o) == "200" }
	for _, u := range MustFailHTTP {
		vm(u, true, "curl -sS -m 5 -o /dev/null -w '%{http_code}' "+u, status200)
	}
	vm("tcp "+LANHostAddr+":22", true, "timeout 5 bash -c 'exec 3<>/dev/tcp/"+LANHostAddr+"/22; head -c 8 <&3'",
		func(o string) bool { return strings.HasPrefix(o, "SSH-2.0") })
	vm("dns api.telegram.org @"+DNSAddr, false, "dig +short +time=3 +tries=2 @"+DNSAddr+" api.telegram.org",
		func(o string) bool { return strings.TrimSpace(o) == InetAddr })
	vm("https://api.telegram.org/ (lab CA)", false, "curl -sS -m 10 -o /dev/null -w '%{http_code}' https://api.telegram.org/", status200)
	vm("https://deb.debian.org/debian/ (mirror)", false,
		"curl -sS -m 10 -o /dev/null -w '%{http_code}' https://deb.debian.org/debian/dists/bookworm/InRelease", status200)
	vm("apt-get update (lab mirror)", false,
		"apt-get -q update 2>&1 && apt-cache policy openclaw-lab-canary | grep -q 'Candidate: 1.1' && echo CANARY-1.1",
		func(o string) bool {
			return strings.Contains(o, "CANARY-1.1") && !strings.Contains(o, "W:") && !strings.Contains(o, "E:")
		})

	// From a container on the VM: the same targets through Docker's bridge and NAT.
	t0 := time.Now()
	cprobes := map[string]string{}
	// Debian 12's busybox-static wget segfaults at start (1:1.35.0-4+deb12u1), so HTTP goes through nc.
	httpGet := func(hostPort string) string {
		return `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 ` + strings.Replace(hostPort, ":", " ", 1) + ` | head -n 1 | grep -q '^HTTP/1.[01] '`
	}
	for _, u := range MustFailHTTP {
		hp := strings.TrimSuffix(strings.TrimPrefix(u, "http://"), "/")
		if !strings.Contains(hp, ":") {
			hp += ":80"
		}
		cprobes[u] = httpGet(hp)
	}
	cprobes["tcp "+LANHostAddr+":22"] = "nc -w 3 " + LANHostAddr + " 22 </dev/null | head -c 8 | grep -q SSH-2.0"
	cprobes["dns api.telegram.org @"+DNSAddr] = "nslookup api.telegram.org " + DNSAddr + " | grep -q " + InetAddr
	// an HTTP request to the HTTPS port: Go's TLS server answers "HTTP/1.0 400 Bad Request", so it is there
	cprobes["tcp "+InetAddr+":443 (HTTPS server)"] = httpGet(InetAddr + ":443")
	var script strings.Builder
	order := append([]string(nil), MustFailHTTP...)
	order = append(order, "tcp "+LANHostAddr+":22", "dns api.telegram.org @"+DNSAddr, "tcp "+InetAddr+":443 (HTTPS server)")
	for i, name := range order {
		fmt.Fprintf(&script, "( %s ) >/dev/null 2>&1; echo \"PROBE %d $?\"\n", cprobes[name], i)
	}
	cmd := "systemctl is-active --quiet docker || systemctl start docker; " +
		"for i in $(seq 120); do docker info >/dev/null 2>&1 && break; sleep 1; done; " +
		"docker image inspect lab/busybox >/dev/null 2>&1 || docker import /opt/lab/busybox-rootfs.tar lab/busybox >/dev/null && " +
		"docker run --rm lab/busybox sh -c " + shellQuote(script.String())
	o, e, code, err := l.RunTimeout(cmd, nil, 5*time.Minute)
	results := map[int]string{}
	for _, line := range strings.Split(o, "\n") {
		var i int
		var rc string
		if n, _ := fmt.Sscanf(line, "PROBE %d %s", &i, &rc); n == 2 {
			results[i] = rc
		}
	}
	took := time.Since(t0)
	for i, name := range order {
		p := Probe{From: "container", Target: name, MustFail: !strings.HasPrefix(name, "dns") && !strings.Contains(name, InetAddr), Took: took}
		rc, ok := results[i]
		p.OK = ok && rc == "0"
		switch {
		case err != nil:
			p.Detail = err.Error()
		case !ok:
			p.Detail = oneLine(fmt.Sprintf("no result (docker exit %d): %s", code, e), 120)
		default:
			p.Detail = "exit " + rc
		}
		add(p)
	}

	// From the LAN host 192.168.1.2: the VM's sshd (and, once it exists, the gateway port).
	t0 = time.Now()
	p := Probe{From: NSLAN, Target: "tcp " + VMAddr + ":22", MustFail: true}
	if c, err := DialFrom(NSLAN, net.JoinHostPort(VMAddr, "22"), 5*time.Second); err != nil {
		p.Detail = err.Error()
	} else {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 64)
		n, _ := io.ReadAtLeast(c, b, 8)
		_ = c.Close()
		p.Detail = oneLine(string(b[:n]), 60)
		p.OK = strings.HasPrefix(p.Detail, "SSH-2.0")
	}
	p.Took = time.Since(t0)
	add(p)

	done()
	if f := rec.Failed(); len(f) > 0 {
		t.Fatalf("liveness proof failed: %d target(s) did not answer before hardening, so a later failed probe would prove nothing:\n%s", len(f), rec)
	}
	l.Logf("%s", rec)
	return rec
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// BuildBinary builds the project binary (CGO_ENABLED=0, static) from the repository root once per test
// process and returns its path.
func BuildBinary(t testing.TB) (string, error) {
	binOnce.Do(func() {
		t0 := time.Now()
		dir := filepath.Join(os.TempDir(), "ochlab-bin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			binErr = err
			return
		}
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = "/usr/local/go/bin/go" // where this project's machines have it
		}
		out := filepath.Join(dir, "openclaw-harden")
		cmd := exec.Command(goTool, "build", "-o", out, ".")
		cmd.Dir = RepoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		if b, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("building openclaw-harden (go build . in %s) failed: %w\n%s", cmd.Dir, err, b)
			return
		}
		binPath = out
		t.Logf("built %s in %.1fs", out, time.Since(t0).Seconds())
	})
	return binPath, binErr
}

// InstallBinary builds the project binary and copies it into the VM at /usr/local/bin/openclaw-harden.
func (l *Lab) InstallBinary() error {
	done := l.Phase("build and install openclaw-harden")
	bin, err := BuildBinary(l.T)
	if err != nil {
		return err
	}
	if err := l.Copy(bin, "/usr/local/bin/openclaw-harden"); err != nil {
		return err
	}
	done()
	return nil
}
