package lab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestShellQuote runs everywhere (no root): the quoting every VM command goes through.
func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"a": "'a'", "it's": `'it'\''s'`, "": "''", "$(x) `y`": "'$(x) `y`'"} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
	if Skipped() == "" && testing.Short() {
		t.Fatal("Skipped must report -short")
	}
}

// resolverIn resolves names with the DNS server at addr, from inside lab namespace ns (over TCP).
func resolverIn(ns, addr string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return DialFrom(ns, net.JoinHostPort(addr, "53"), 3*time.Second)
	}}
}

// TestLabNetworkSealed builds the lab network without a VM: it is sealed (Start checks that), the lab
// DNS and HTTPS servers answer from the LAN, and nothing outside the lab is reachable from it.
func TestLabNetworkSealed(t *testing.T) {
	l := StartWith(t, Options{NoVM: true})
	if l.Seal == nil || len(l.Seal.Interfaces[NSRouter]) == 0 {
		t.Fatal("no seal report")
	}
	for _, dns := range []string{DNSAddr, RouterLAN} {
		ips, err := resolverIn(NSLAN, dns).LookupHost(context.Background(), "api.telegram.org")
		if err != nil || len(ips) != 1 || ips[0] != InetAddr {
			t.Errorf("api.telegram.org via %s from %s: %v %v, want %s", dns, NSLAN, ips, err, InetAddr)
		}
	}
	ca, err := os.ReadFile(l.Image.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			host, port, _ := net.SplitHostPort(addr)
			ips, err := resolverIn(NSAdmin, DNSAddr).LookupHost(ctx, host)
			if err != nil {
				return nil, err
			}
			return DialFrom(NSAdmin, net.JoinHostPort(ips[0], port), 3*time.Second)
		},
	}}
	for _, u := range []string{"https://api.telegram.org/", "https://www.lab.test/", "http://" + PrivAddr + "/",
		"http://" + MetadataAddr + "/", "http://" + LANHostAddr + ":18789/",
		"https://deb.debian.org/debian/dists/bookworm/InRelease", "http://security.debian.org/debian-security/dists/bookworm-security/InRelease"} {
		resp, err := hc.Get(u)
		if err != nil {
			t.Errorf("GET %s from %s: %v", u, NSAdmin, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s from %s: %s %s", u, NSAdmin, resp.Status, body)
		}
	}
	// Sealed: an address outside the lab has no route (192.0.2.1 is TEST-NET-1, 127.0.0.1 is the lab host's own lo).
	if c, err := DialFrom(NSAdmin, "192.0.2.1:80", 2*time.Second); err == nil {
		c.Close()
		t.Error("192.0.2.1:80 answered from inside the lab")
	}
	// The LAN host's sshd runs commands in its own namespace.
	cfg := &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(l.Signer())},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second} // a lab host with a fresh key
	c, err := l.sshTo(NSAdmin, net.JoinHostPort(LANHostAddr, "22"), cfg)
	if err != nil {
		t.Fatalf("SSH to the LAN host: %v", err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Output("ip -4 -o addr show dev eth0")
	if err != nil || !strings.Contains(string(out), LANHostAddr+"/24") {
		t.Errorf("command over SSH on the LAN host: %q %v", out, err)
	}
}

// snapshot is the contract of `openclaw-harden audit snapshot --out F`.
type snapshot struct {
	Version int    `json:"version"`
	Taken   string `json:"taken"`
	Items   []struct {
		Section string `json:"section"`
		Key     string `json:"key"`
		Value   string `json:"value"`
	} `json:"items"`
}

func (s *snapshot) find(section string, match func(key, value string) bool) (string, string, bool) {
	for _, it := range s.Items {
		if strings.EqualFold(it.Section, section) && match(it.Key, it.Value) {
			return it.Key, it.Value, true
		}
	}
	return "", "", false
}

// assertSnapshot takes `audit snapshot` in the VM and checks it against the VM's real state, read directly
// (TestLabFullRun, after Step 1).
func assertSnapshot(t *testing.T, l *Lab) {
	t.Helper()
	done := l.Phase("openclaw-harden audit snapshot")
	o, e, code, err := l.Run("openclaw-harden audit snapshot --out /tmp/snap.json")
	done()
	if err != nil || code != 0 {
		t.Fatalf("audit snapshot: exit %d, %v\nstdout:\n%s\nstderr:\n%s", code, err, o, e)
	}
	raw, err := l.ReadFile("/tmp/snap.json")
	if err != nil {
		t.Fatal(err)
	}
	var snap snapshot
	if err := json.Unmarshal(raw, &snap); err != nil {
		t.Fatalf("snapshot is not the documented JSON: %v\n%s", err, raw)
	}
	if snap.Version != 1 || snap.Taken == "" || len(snap.Items) == 0 {
		t.Fatalf("snapshot: version %d, taken %q, %d items", snap.Version, snap.Taken, len(snap.Items))
	}
	dockerVer := strings.TrimSpace(l.MustRun(t, "docker version --format '{{.Server.Version}}'"))
	if _, v, ok := snap.find("docker", func(k, _ string) bool { return k == "version" }); !ok || v != dockerVer {
		t.Errorf("snapshot docker/version = %q (found %v), the VM runs Docker %q", v, ok, dockerVer)
	}
	sshdT := l.MustRun(t, "sshd -T")
	for _, key := range []string{"passwordauthentication", "permitrootlogin"} {
		want := ""
		for _, line := range strings.Split(sshdT, "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == key {
				want = f[1]
			}
		}
		if _, v, ok := snap.find("sshd", func(k, _ string) bool { return strings.EqualFold(k, key) }); !ok || v != want {
			t.Errorf("snapshot sshd/%s = %q (found %v), sshd -T says %q", key, v, ok, want)
		}
	}
	if _, _, ok := snap.find("addresses", func(k, v string) bool {
		return strings.Contains(k+" "+v, "eth0") && strings.Contains(k+" "+v, VMAddr+"/24")
	}); !ok {
		t.Errorf("snapshot has no addresses item for eth0 %s/24", VMAddr)
	}
}

func TestSlowestTraceLines(t *testing.T) {
	trace := "trace +0.010s     12ms exit 0: ss -H -tulpn\nnoise\ntrace +0.011s   2400ms exit 0: ufw status verbose\ntrace +0.2s    300ms exit 1: iptables -S DOCKER-USER\n"
	got := slowest(trace, 2)
	if len(got) != 2 || !strings.HasSuffix(got[0], "ufw status verbose") || !strings.HasSuffix(got[1], "iptables -S DOCKER-USER") {
		t.Fatalf("slowest: %q", got)
	}
}
