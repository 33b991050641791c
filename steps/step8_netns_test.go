//go:build linux

package steps

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"openclaw-harden/system"
)

// step8NS creates a throwaway network namespace with only loopback up (and a drop rule for port 9 when
// iptables is there); nothing in it can reach this machine's network or beyond.
func step8NS(t *testing.T) (name string, ns system.NetNS) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping the real-kernel namespace test")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip is not installed")
	}
	buf := make([]byte, 4)
	rand.Read(buf)
	name = "och8-" + hex.EncodeToString(buf)
	nsRun(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := (system.ExecRunner{}).Run(context.Background(), system.Cmd{Argv: []string{"ip", "netns", "del", name}}); err != nil {
			t.Errorf("removing the test namespace %s: %v\n%s", name, err, out)
		}
	})
	nsRun(t, "ip", "-n", name, "link", "set", "lo", "up")
	// 127.0.0.9 stands in for a LAN target behind a DROP rule: packets to it vanish, as DOCKER-USER's do.
	nsRun(t, "ip", "netns", "exec", name, "iptables", "-A", "INPUT", "-d", "127.0.0.9", "-j", "DROP")
	return name, system.NetNS{Path: "/run/netns/" + name, Label: "test namespace " + name}
}

// inTestNS runs fn on a locked thread inside ns (to start the fake servers there).
func inTestNS(t *testing.T, ns system.NetNS, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := netns.GetFromPath(ns.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		t.Fatal(err)
	}
	fn()
	if err := netns.Set(orig); err != nil {
		runtime.LockOSThread()
		t.Fatalf("switching back: %v", err)
	}
}

// fakeDNS answers A queries for known names, NXDOMAIN for the rest; silent servers never answer.
func fakeDNS(t *testing.T, pc net.PacketConn, answers map[string]string) {
	go func() {
		buf := make([]byte, 1500)
		for {
			n, src, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 12 {
				continue
			}
			q := buf[:n]
			// the question: labels from byte 12, then type and class
			var labels []string
			i := 12
			for i < n && q[i] != 0 {
				l := int(q[i])
				labels = append(labels, string(q[i+1:i+1+l]))
				i += 1 + l
			}
			qEnd := i + 5
			name := strings.Join(labels, ".")
			qtype := binary.BigEndian.Uint16(q[i+1 : i+3])
			resp := append([]byte(nil), q[:qEnd]...)
			resp[2] = 0x81 | (q[2] & 0x01) // QR, RD copied
			resp[3] = 0x80                 // RA, NOERROR
			binary.BigEndian.PutUint16(resp[6:], 0)
			binary.BigEndian.PutUint16(resp[8:], 0)
			binary.BigEndian.PutUint16(resp[10:], 0)
			ip, ok := answers[name]
			switch {
			case !ok:
				resp[3] = 0x83 // NXDOMAIN
			case qtype == 1:
				binary.BigEndian.PutUint16(resp[6:], 1)
				resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
				resp = append(resp, net.ParseIP(ip).To4()...)
			}
			_, _ = pc.WriteTo(resp, src)
		}
	}()
	t.Cleanup(func() { pc.Close() })
}

// TestProbeClassificationInNetns: real sockets in a namespace of our own, every failure class the matrix
// reports, and the whole matrix finishing in about one timeout although four probes time out.
func TestProbeClassificationInNetns(t *testing.T) {
	_, ns := step8NS(t)
	var httpAddr, refusedAddr, tlsAddr string
	var dnsGood, dnsSilent net.PacketConn
	inTestNS(t, ns, func() {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }))
		t.Cleanup(srv.Close)
		httpAddr = strings.TrimPrefix(srv.URL, "http://")
		tsrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
		t.Cleanup(tsrv.Close)
		tlsAddr = strings.TrimPrefix(tsrv.URL, "https://")
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		refusedAddr = l.Addr().String()
		l.Close()
		if dnsGood, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if dnsSilent, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	})
	// Nothing listens on the host side at these addresses: a probe that forgot the namespace would fail.
	fakeDNS(t, dnsGood, map[string]string{"api.telegram.org": "127.0.0.1"})
	t.Cleanup(func() { dnsSilent.Close() })
	_, tlsPort, _ := net.SplitHostPort(tlsAddr)
	timeout := 1500 * time.Millisecond
	ps := []Probe{
		{ID: "t.http-works", Kind: KindHTTP, Target: "http://" + httpAddr + "/", MustWork: true},
		{ID: "t.tcp-works", Kind: KindTCP, Target: httpAddr, MustWork: true},
		{ID: "t.refused", Kind: KindTCP, Target: refusedAddr},
		{ID: "t.dropped", Kind: KindHTTP, Target: "http://127.0.0.9:80/"},
		{ID: "t.noroute", Kind: KindTCP, Target: "10.255.0.1:80"},
		{ID: "t.dns-works", Kind: KindDNS, Target: dnsGood.LocalAddr().String(), Name: "api.telegram.org", MustWork: true},
		{ID: "t.dns-nxdomain", Kind: KindDNS, Target: dnsGood.LocalAddr().String(), Name: "nothing.invalid", MustWork: true},
		{ID: "t.dns-silent", Kind: KindDNS, Target: dnsSilent.LocalAddr().String(), Name: "api.telegram.org", MustWork: true},
		{ID: "t.tls-untrusted", Kind: KindTLS, Target: "api.telegram.org:" + tlsPort, Name: "api.telegram.org", MustWork: true},
		{ID: "t.listen", Kind: KindUDPListen, Target: "0.0.0.0:138"},
		{ID: "t.listen-mdns", Kind: KindUDPListen, Target: "224.0.0.251:5353"},
	}
	for i := range ps {
		ps[i].Source, ps[i].Timeout = SourceContainer, timeout
	}
	h := system.NewHost(t.TempDir(), false)
	// The TLS probe resolves its name through the fake resolver (in the namespace), as the container would.
	t0 := time.Now()
	pr := prober{h: h, ns: ns, resolvers: []string{dnsGood.LocalAddr().String()}}
	results := map[string]Check{}
	done := make(chan Check)
	for _, p := range ps {
		go func(p Probe) { done <- probeCheck(p, pr.run(context.Background(), p)) }(p)
	}
	for range ps {
		c := <-done
		results[c.ID] = c
	}
	took := time.Since(t0)
	for _, p := range ps {
		c := results[p.ID]
		t.Logf("%-16s ok=%-5v %5dms got %s | %s", c.ID, c.OK, c.DurationMS, c.Got, c.Reason)
	}
	want := map[string]struct {
		ok     bool
		prefix string
	}{
		"t.http-works":    {true, "works: answered HTTP/1.0 200 OK"},
		"t.tcp-works":     {true, "works: connected"},
		"t.refused":       {true, "rejected: "},
		"t.dropped":       {true, "dropped: no answer within 1.5s"},
		"t.noroute":       {true, "no route: "},
		"t.dns-works":     {true, "works: api.telegram.org → 127.0.0.1"},
		"t.dns-nxdomain":  {false, "fails: dns"},
		"t.dns-silent":    {false, "fails: dns"},
		"t.tls-untrusted": {false, "fails: tls"},
		"t.listen":        {true, "listened "},
		"t.listen-mdns":   {true, "listened "},
	}
	for id, w := range want {
		c := results[id]
		if c.OK != w.ok || !strings.HasPrefix(c.Got, w.prefix) {
			t.Errorf("%s: ok=%v got %q (%s); want ok=%v got %q…", id, c.OK, c.Got, c.Reason, w.ok, w.prefix)
		}
	}
	if r := results["t.dns-nxdomain"].Reason; !strings.Contains(r, "no such host") || !strings.Contains(r, dnsGood.LocalAddr().String()) {
		t.Errorf("NXDOMAIN reason: %q", results["t.dns-nxdomain"].Reason)
	}
	if !strings.Contains(results["t.tls-untrusted"].Reason, "certificate") {
		t.Errorf("TLS reason: %q", results["t.tls-untrusted"].Reason)
	}
	// Four probes wait out their timeout; run concurrently, the whole set still takes about one.
	if took > timeout+time.Second {
		t.Errorf("the probes took %s together; want about one timeout (%s)", took, timeout)
	}
	t.Logf("%d probes in %s (timeout %s each)", len(ps), took.Round(time.Millisecond), timeout)
}

// TestMatrixVerifyInNetns runs Verify itself against the namespace: checks grouped by source, the container
// group first, the LAN group saying it was not run, in about one timeout.
func TestMatrixVerifyInNetns(t *testing.T) {
	_, ns := step8NS(t)
	var httpAddr string
	inTestNS(t, ns, func() {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
		t.Cleanup(srv.Close)
		httpAddr = strings.TrimPrefix(srv.URL, "http://")
	})
	timeout := time.Second
	ps := []Probe{
		{ID: "step8.container.must-fail.dropped", Source: SourceContainer, Kind: KindHTTP, Target: "http://127.0.0.9:80/", Timeout: timeout},
		{ID: "step8.container.must-work.http", Source: SourceContainer, Kind: KindHTTP, Target: "http://" + httpAddr + "/", MustWork: true, Timeout: timeout},
		{ID: "step8.container.listen.broadcast", Source: SourceContainer, Kind: KindUDPListen, Target: "0.0.0.0:138", Timeout: timeout},
	}
	h := system.NewHost(t.TempDir(), false)
	t0 := time.Now()
	cs := MatrixStep{Container: &ns, Probes: ps, NoHost: true}.Verify(context.Background(), h, Defaults())
	took := time.Since(t0)
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
		if !c.OK {
			t.Errorf("%s failed: %s (%s)", c.ID, c.Got, c.Reason)
		}
	}
	wantIDs := "step8.container.found step8.container.must-fail.dropped step8.container.must-work.http step8.container.listen.broadcast step8.lan.not-run"
	if strings.Join(ids, " ") != wantIDs {
		t.Errorf("checks in order %v, want %s", ids, wantIDs)
	}
	if took > timeout+time.Second {
		t.Errorf("Verify took %s; want about one timeout (%s)", took, timeout)
	}
}
