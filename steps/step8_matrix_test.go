package steps

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"openclaw-harden/system"
)

// TestClassifyFakeErrors: the error shapes the dialer, resolver and TLS return, built by hand.
func TestClassifyFakeErrors(t *testing.T) {
	op := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)}
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"refused", op(syscall.ECONNREFUSED), system.FailRejected},
		{"net unreachable", op(syscall.ENETUNREACH), system.FailNoRoute},
		{"host unreachable", op(syscall.EHOSTUNREACH), system.FailNoRoute},
		{"local firewall", op(syscall.EPERM), system.FailBlocked},
		{"dial timeout", &net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}, system.FailDropped},
		{"context deadline", fmt.Errorf("wrapped: %w", context.DeadlineExceeded), system.FailDropped},
		{"nxdomain", &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}, system.FailDNS},
		{"dns timeout", &net.DNSError{Err: "i/o timeout", Name: "x", IsTimeout: true}, system.FailDNS},
		{"unknown CA", x509.UnknownAuthorityError{}, system.FailTLS},
		{"dry run", fmt.Errorf("tcp 10.0.0.1:80: %w", system.ErrDryRun), system.FailDryRun},
		{"other", errors.New("something odd"), system.FailOther},
		{"nil", nil, ""},
	} {
		if got := system.ClassifyProbeError(tc.err); got != tc.want {
			t.Errorf("%s: %v classified %q, want %q", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestDefaultProbesFromAnswers(t *testing.T) {
	a := Defaults()
	a.Resolvers = []string{"1.1.1.1", "8.8.8.8"}
	a.Probes.MustFail = []string{"http://192.168.1.77:8080/admin", "192.168.1.5:22"}
	a.Probes.MustWork = []string{"https://example.org"}
	ps := DefaultProbes(a)
	byID := map[string]Probe{}
	for _, p := range ps {
		if _, dup := byID[p.ID]; dup {
			t.Errorf("duplicate probe id %s", p.ID)
		}
		byID[p.ID] = p
		if p.Timeout != DefaultProbeTimeout {
			t.Errorf("%s: timeout %s", p.ID, p.Timeout)
		}
	}
	want := map[string]string{
		"step8.container.must-fail.lan-gateway": "http http://192.168.1.1:80/ false",
		"step8.container.must-fail.lan-host":    "http http://192.168.1.2:80/ false",
		"step8.container.must-fail.private-10":  "http http://10.0.0.1:80/ false",
		"step8.container.must-fail.metadata":    "http http://169.254.169.254:80/ false",
		"step8.container.must-work.telegram":    "tls api.telegram.org:443 true",
		"step8.container.must-work.dns.1.1.1.1": "dns 1.1.1.1:53 true",
		"step8.container.must-work.dns.8.8.8.8": "dns 8.8.8.8:53 true",
		"step8.container.answers.must-fail.1":   "http http://192.168.1.77:8080/admin false",
		"step8.container.answers.must-fail.2":   "tcp 192.168.1.5:22 false",
		"step8.container.answers.must-work.1":   "tls example.org:443 true",
		"step8.container.listen.mdns":           "udp-listen 224.0.0.251:5353 false",
		"step8.vm.gateway-loopback":             "http http://127.0.0.1:18789/ true",
		"step8.container.listen.broadcast":      "udp-listen 0.0.0.0:138 false",
		"step8.vm.listen.mdns":                  "udp-listen 224.0.0.251:5353 false",
	}
	for id, w := range want {
		p, ok := byID[id]
		if !ok {
			t.Errorf("missing probe %s", id)
			continue
		}
		if got := fmt.Sprintf("%s %s %v", p.Kind, p.Target, p.MustWork); got != w {
			t.Errorf("%s: %s, want %s", id, got, w)
		}
	}
	if len(ps) != len(want) {
		t.Errorf("%d probes, want %d", len(ps), len(want))
	}
}

func TestProbeCheckVerdicts(t *testing.T) {
	mf := Probe{ID: "x", Source: SourceContainer, Kind: KindHTTP, Target: "http://10.0.0.1:80/"}
	mw := mf
	mw.MustWork = true
	for _, tc := range []struct {
		p   Probe
		r   probeResult
		ok  bool
		got string
	}{
		{mf, probeResult{Class: system.FailDropped, Detail: "no answer within 5s"}, true, "dropped: no answer within 5s"},
		{mf, probeResult{Class: system.FailRejected, Detail: "connection refused"}, true, "rejected: connection refused"},
		{mf, probeResult{Reached: true, Detail: "answered HTTP/1.0 200 OK"}, false, "reached: answered HTTP/1.0 200 OK"},
		{mf, probeResult{Class: system.FailProtocol, Detail: "not HTTP"}, false, "reached (TCP connected): not HTTP"},
		{mf, probeResult{Class: system.FailDryRun}, false, "not sent (dry run)"},
		{mw, probeResult{Reached: true, Detail: "answered HTTP/1.0 200 OK"}, true, "works: answered HTTP/1.0 200 OK"},
		{mw, probeResult{Class: system.FailDNS, Detail: "no such host"}, false, "fails: dns"},
	} {
		c := probeCheck(tc.p, tc.r)
		if c.OK != tc.ok || c.Got != tc.got || c.Source != "container" || c.Target != tc.p.Target {
			t.Errorf("%v %+v → ok=%v got %q source %q; want ok=%v got %q", tc.p.MustWork, tc.r, c.OK, c.Got, c.Source, tc.ok, tc.got)
		}
		if !c.OK && c.Reason == "" {
			t.Errorf("failed check without a reason: %+v", c)
		}
	}
}

func TestProcNetPorts(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  123: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000   104        0 1 2 0000000000000000 0
  124: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 1 2 0000000000000000 0
`
	if got := procNetPorts(table, 5353); len(got) != 1 || got[0] != "00000000:14E9" {
		t.Errorf("5353: %v", got)
	}
	if got := procNetPorts(table, 138); len(got) != 0 {
		t.Errorf("138: %v", got)
	}
}

// TestLANScriptLocally runs the LAN host's bash probes on this machine against loopback: a listener that
// answers HTTP, a closed port (refused), and checks every line comes back classified.
func TestLANScriptLocally(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(3 * time.Second))
				var req []byte
				buf := make([]byte, 512)
				for !strings.Contains(string(req), "\r\n\r\n") {
					n, err := c.Read(buf)
					req = append(req, buf[:n]...)
					if err != nil {
						return
					}
				}
				_, _ = c.Write([]byte("HTTP/1.0 200 OK\r\n\r\nhi"))
			}()
		}
	}()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	port := l.Addr().(*net.TCPAddr).Port
	a := Defaults()
	a.GatewayPort = port
	ps := lanProbes(a, "127.0.0.1")
	ps[0].cmd = "exec 3<>/dev/tcp/127.0.0.1/" + fmt.Sprint(closedPort) + " || exit 1; echo connected" // "ssh" → a closed port
	script := lanScript(ps, 2*time.Second)
	t0 := time.Now()
	out, err := exec.Command("bash", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := map[int]probeResult{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.SplitN(line, " ", 5)
		if len(f) < 4 || f[0] != "PROBE" {
			continue
		}
		var i, rc int
		var ms int64
		fmt.Sscan(f[1], &i)
		fmt.Sscan(f[2], &rc)
		fmt.Sscan(f[3], &ms)
		rest := ""
		if len(f) == 5 {
			rest = f[4]
		}
		got[i] = lanResult(rc, ms, rest)
	}
	t.Logf("lan script on loopback in %s:\n%s", time.Since(t0).Round(time.Millisecond), out)
	if r := got[0]; r.Reached || r.Class != system.FailRejected {
		t.Errorf("closed port: %+v, want rejected", r)
	}
	if r := got[1]; !r.Reached {
		t.Errorf("tcp to the listener: %+v, want reached", r)
	}
	if r := got[2]; !r.Reached || !strings.Contains(r.Detail, "HTTP/1.0 200 OK") {
		t.Errorf("http to the listener: %+v, want reached with the status line", r)
	}
	if r := lanResult(124, 2000, ""); r.Class != system.FailDropped {
		t.Errorf("exit 124: %+v", r)
	}
	if r := lanResult(1, 3, "bash: connect: No route to host"); r.Class != system.FailNoRoute {
		t.Errorf("no route: %+v", r)
	}
}

func TestLANNotRunSaysSo(t *testing.T) {
	h := system.NewHost(t.TempDir(), false)
	cs := lanChecks(context.Background(), h, Defaults())
	if len(cs) != 1 || !strings.HasPrefix(cs[0].Got, "not run") || !strings.Contains(cs[0].Reason, "unproven") {
		t.Errorf("without lan_host: %+v", cs)
	}
}

// TestMatrixDryRunSendsNothing: in dry-run the container and VM probes to other hosts are listed, not sent.
func TestMatrixDryRunSendsNothing(t *testing.T) {
	h := system.NewHost(t.TempDir(), true)
	ns := system.NetNS{Path: "/proc/self/ns/net", Label: "test namespace"}
	a := Defaults()
	ps := []Probe{
		{ID: "p.http", Source: SourceContainer, Kind: KindHTTP, Target: "http://10.0.0.1:80/", Timeout: time.Second},
		{ID: "p.dns", Source: SourceContainer, Kind: KindDNS, Target: "1.1.1.1:53", Name: TelegramAPI, MustWork: true, Timeout: time.Second},
		{ID: "p.tls", Source: SourceContainer, Kind: KindTLS, Target: "api.telegram.org:443", Name: TelegramAPI, MustWork: true, Timeout: time.Second},
		{ID: "p.listen", Source: SourceContainer, Kind: KindUDPListen, Target: "0.0.0.0:138", Timeout: time.Second},
	}
	cs := MatrixStep{Container: &ns, Probes: ps, NoHost: true}.Verify(context.Background(), h, a)
	for _, c := range cs {
		if strings.HasPrefix(c.ID, "p.") && (c.OK || !strings.Contains(c.Got, "dry run") && !strings.Contains(c.Reason, "dry run")) {
			t.Errorf("dry run: %+v", c)
		}
	}
	would := strings.Join(h.Would(), "\n")
	for _, w := range []string{"would probe: tcp 10.0.0.1:80 from test namespace", "would probe: udp 1.1.1.1:53 from test namespace", "would listen: udp port 138 in test namespace"} {
		if !strings.Contains(would, w) {
			t.Errorf("dry run did not record %q:\n%s", w, would)
		}
	}
}

func TestFindGatewayAndExposure(t *testing.T) {
	f := system.NewFakeRunner(map[string]string{
		"docker ps -q --no-trunc --filter label=com.docker.compose.service=openclaw-gateway":                           "",
		"docker ps -q --no-trunc --filter publish=18789":                                                               "abc123\n",
		"docker inspect -f {{.Id}}|{{.Name}}|{{.State.Running}}|{{.State.Pid}}|{{json .NetworkSettings.Ports}} abc123": `abc123|/labgw|true|4242|{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"18789"}]}` + "\n",
		"ss -H -tulpn": "tcp LISTEN 0 4096 0.0.0.0:22 0.0.0.0:* users:((\"sshd\",pid=1,fd=3))\n",
	})
	h := system.NewHost(t.TempDir(), false)
	h.Root = t.TempDir() // no Docker API socket: the docker CLI is used
	h.Runner = f
	h.Env = func(string) string { return "" }
	a := Defaults()
	g, err := findGateway(context.Background(), h, a)
	if err != nil || g.Name != "labgw" || g.PID != 4242 || g.How != "publishes port 18789" {
		t.Fatalf("findGateway: %+v %v", g, err)
	}
	cs := gatewayExposure(context.Background(), h, a, &g)
	for _, c := range cs {
		if !c.OK {
			t.Errorf("%s: %s (%s)", c.ID, c.Got, c.Reason)
		}
	}
	// Published on every address, and a socket on 0.0.0.0: both fail and say so.
	f.Set("ss -H -tulpn", system.FakeResponse{Stdout: "tcp LISTEN 0 4096 0.0.0.0:18789 0.0.0.0:* users:((\"docker-proxy\",pid=9,fd=4))\n"})
	g.Ports["80/tcp"][0].HostIP = "0.0.0.0"
	cs = gatewayExposure(context.Background(), h, a, &g)
	for _, c := range cs {
		if c.OK || !strings.Contains(c.Reason, "beyond loopback") {
			t.Errorf("wide exposure not caught: %+v", c)
		}
	}
	// No container at all: the step says so as a failed check, naming the probes not run.
	f.Set("docker ps -q --no-trunc --filter publish=18789", system.FakeResponse{})
	if _, err := findGateway(context.Background(), h, a); err == nil || !strings.Contains(err.Error(), GatewayContainerEnv) {
		t.Errorf("no container: %v", err)
	}
	cs = MatrixStep{NoHost: true, Probes: DefaultProbes(a)[:2]}.Verify(context.Background(), h, a)
	if cs[0].ID != "step8.container.found" || cs[0].OK || !strings.Contains(cs[0].Reason, "2 container probes were not run") {
		t.Errorf("without a container: %+v", cs[0])
	}
	// The operator's name wins over discovery.
	h.Env = func(k string) string {
		if k == GatewayContainerEnv {
			return "abc123"
		}
		return ""
	}
	if g, err := findGateway(context.Background(), h, a); err != nil || g.How != GatewayContainerEnv+"=abc123" {
		t.Errorf("named container: %+v %v", g, err)
	}
}

// TestHostUDPListenersSkipsOwnSockets: the VM's 5353/udp check names other processes' sockets, never the
// matrix's own mDNS listener.
func TestHostUDPListenersSkipsOwnSockets(t *testing.T) {
	own := fmt.Sprintf("udp UNCONN 0 0 0.0.0.0:5353 0.0.0.0:* users:((\"openclaw-harden\",pid=%d,fd=7))\n", os.Getpid())
	h := system.NewHost(t.TempDir(), false)
	h.Runner = system.NewFakeRunner(map[string]string{"ss -H -tulpn": own})
	if c := hostUDPListeners(context.Background(), h); !c.OK {
		t.Errorf("own socket counted: %+v", c)
	}
	h.Runner = system.NewFakeRunner(map[string]string{"ss -H -tulpn": own + "udp UNCONN 0 0 0.0.0.0:5353 0.0.0.0:* users:((\"avahi-daemon\",pid=1,fd=12))\n"})
	if c := hostUDPListeners(context.Background(), h); c.OK || !strings.Contains(c.Got, "avahi-daemon") {
		t.Errorf("avahi not reported: %+v", c)
	}
}

// TestFindGatewayAPI: through a fake Docker API on the socket, no docker CLI is run.
func TestFindGatewayAPI(t *testing.T) {
	root := t.TempDir()
	sock := filepath.Join(root, "var/run/docker.sock")
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Skipf("unix socket: %v", err)
	}
	var paths []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path+"?"+r.URL.Query().Get("filters"))
		switch {
		case r.URL.Path == "/containers/json" && strings.Contains(r.URL.Query().Get("filters"), "publish"):
			fmt.Fprint(w, `[{"Id":"abc123"}]`)
		case r.URL.Path == "/containers/json":
			fmt.Fprint(w, `[]`)
		case r.URL.Path == "/containers/abc123/json":
			fmt.Fprint(w, `{"Id":"abc123","Name":"/labgw","State":{"Running":true,"Pid":4242},"NetworkSettings":{"Ports":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"18789"}]}}}`)
		default:
			http.NotFound(w, r)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	f := system.NewFakeRunner(nil)
	h := system.NewHost(t.TempDir(), false)
	h.Root, h.Runner, h.Env = root, f, func(string) string { return "" }
	g, err := findGateway(context.Background(), h, Defaults())
	if err != nil || g.Name != "labgw" || g.PID != 4242 || g.How != "publishes port 18789" || g.Ports["80/tcp"][0].HostIP != "127.0.0.1" {
		t.Fatalf("findGateway: %+v %v (asked %v)", g, err, paths)
	}
	if len(f.CallsSnapshot()) != 0 {
		t.Errorf("the docker CLI ran although the API answered: %v", f.CallsSnapshot())
	}
}
