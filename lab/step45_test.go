package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// step45Chain is DOCKER-USER as `iptables -S DOCKER-USER` prints it for lab/testdata/lab.yaml.
var step45Chain = []string{
	"-N DOCKER-USER",
	"-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
	"-A DOCKER-USER -s 172.20.0.0/24 -d 172.20.0.0/24 -j RETURN",
	"-A DOCKER-USER -d 192.168.1.0/24 -j DROP",
	"-A DOCKER-USER -d 10.0.0.0/8 -j DROP",
	"-A DOCKER-USER -d 172.16.0.0/12 -j DROP",
	"-A DOCKER-USER -d 192.168.0.0/16 -j DROP",
	"-A DOCKER-USER -d 169.254.0.0/16 -j DROP",
	"-A DOCKER-USER -d 100.64.0.0/10 -j DROP",
	"-A DOCKER-USER -d 224.0.0.0/4 -j DROP",
	"-A DOCKER-USER -d 255.255.255.255/32 -j DROP",
	"-A DOCKER-USER -j RETURN",
}

// The operator's daemon.json before Step 5: a data root of its own and a log tag, which Step 5 must keep.
const step45OperatorDaemonJSON = `{
  "data-root": "/srv/docker",
  "log-opts": {
    "tag": "{{.Name}}"
  }
}
`

// step45Probe is one probe from a container: a shell test run inside busybox, and whether it must work.
type step45Probe struct {
	name, cmd string
	mustWork  bool
}

func step45HTTP(host string, port int) string {
	return fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 %s %d | head -n 1 | grep -q '^HTTP/1.[01] '`, host, port)
}

var step45Probes = []step45Probe{
	{"http " + LANHostAddr + ":80", step45HTTP(LANHostAddr, 80), false},
	{"http " + PrivAddr + ":80", step45HTTP(PrivAddr, 80), false},
	{"http " + MetadataAddr + ":80", step45HTTP(MetadataAddr, 80), false},
	// An HTTP request to the HTTPS port: Go's TLS server answers "HTTP/1.0 400 Bad Request", so it is reached.
	{"tcp " + InetAddr + ":443", step45HTTP(InetAddr, 443), true},
	{"dns api.telegram.org @" + DNSAddr, "nslookup api.telegram.org " + DNSAddr + " | grep -q " + InetAddr, true},
}

// step45Container runs every probe from one container on network net and returns which succeeded.
func step45Container(t *testing.T, l *Lab, net string) map[string]bool {
	t.Helper()
	var script strings.Builder
	for i, p := range step45Probes {
		fmt.Fprintf(&script, "( %s ) >/dev/null 2>&1; echo \"PROBE %d $?\"\n", p.cmd, i)
	}
	o, e, code, err := l.RunTimeout("docker run --rm --network "+net+" lab/busybox sh -c "+shellQuote(script.String()), nil, 3*time.Minute)
	if err != nil || code != 0 {
		t.Fatalf("probe container on %s: exit %d %v\n%s\n%s", net, code, err, o, e)
	}
	got := map[string]bool{}
	for _, line := range strings.Split(o, "\n") {
		var i int
		var rc string
		if n, _ := fmt.Sscanf(line, "PROBE %d %s", &i, &rc); n == 2 && i < len(step45Probes) {
			got[step45Probes[i].name] = rc == "0"
		}
	}
	if len(got) != len(step45Probes) {
		t.Fatalf("probe container on %s: %d results for %d probes:\n%s", net, len(got), len(step45Probes), o)
	}
	return got
}

// step45Isolated checks the hardened expectations from containers on the pinned network and the default bridge
// (nets: the pinned network's name first; default labnet and bridge).
func step45Isolated(t *testing.T, l *Lab, stage string, nets ...string) {
	t.Helper()
	done := l.Phase("container probes: " + stage)
	defer done()
	if len(nets) == 0 {
		nets = []string{"labnet", "bridge"}
	}
	for _, net := range nets {
		got := step45Container(t, l, net)
		var line []string
		for _, p := range step45Probes {
			ok := got[p.name]
			verdict := "blocked"
			if ok {
				verdict = "reached"
			}
			line = append(line, p.name+"="+verdict)
			if ok != p.mustWork {
				want := "blocked"
				if p.mustWork {
					want = "reached"
				}
				t.Errorf("%s: from a container on %s, %s was %s; want %s", stage, net, p.name, verdict, want)
			}
		}
		l.Logf("%s, container on %s: %s", stage, net, strings.Join(line, ", "))
	}
}

// step45Chain checks DOCKER-USER and FORWARD's first rule on the VM's live kernel.
func step45LiveChain(t *testing.T, l *Lab, stage string) {
	t.Helper()
	got := strings.Split(strings.TrimSpace(l.MustRun(t, "iptables -S DOCKER-USER")), "\n")
	if strings.Join(got, "\n") != strings.Join(step45Chain, "\n") {
		t.Errorf("%s: iptables -S DOCKER-USER:\n%s\nwant:\n%s", stage, strings.Join(got, "\n"), strings.Join(step45Chain, "\n"))
	}
	fwd := strings.Split(strings.TrimSpace(l.MustRun(t, "iptables -S FORWARD")), "\n")
	if len(fwd) < 2 || fwd[1] != "-A FORWARD -j DOCKER-USER" || strings.Count(strings.Join(fwd, "\n"), "-j DOCKER-USER") != 1 {
		t.Errorf("%s: FORWARD does not jump to DOCKER-USER first, exactly once:\n%s", stage, strings.Join(fwd, "\n"))
	}
	if _, _, code, err := l.Run("iptables -C FORWARD -j DOCKER-USER"); err != nil || code != 0 {
		t.Errorf("%s: iptables -C FORWARD -j DOCKER-USER: exit %d %v", stage, code, err)
	}
	l.Logf("%s: DOCKER-USER live: %d rules in order, FORWARD rule 1 = -j DOCKER-USER", stage, len(got)-1)
}

func step45Verify(t *testing.T, l *Lab, step int, stage string) {
	t.Helper()
	o, e, code, err := l.Run(fmt.Sprintf("openclaw-harden verify --answers /root/lab.yaml --step %d", step))
	if err != nil || code != 0 {
		t.Errorf("%s: verify --step %d: exit %d %v\n%s\n%s", stage, step, code, err, o, e)
		return
	}
	l.Logf("%s: verify --step %d passed:\n%s", stage, step, strings.TrimSpace(o))
}

// TestLabSteps45 proves Steps 4 and 5 headless on a fresh VM (Debian 12, docker.io 20.10), in one boot
// (Docker restart and reboot: TestLabFullRun). UFW is enabled by the test with an SSH allow for the admin host, standing in for Step 2 (whose
// own lab test covers it), and the operator's daemon.json already sets data-root and a log tag.
//
//   - the automatic restore: with a dockerd flag (--icc=false in a unit drop-in) that conflicts with a key Step 5
//     writes, dockerd refuses the new file; Step 5 puts the old file back, Docker comes back, the step fails
//     with one sentence and the journal lines;
//   - Steps 4 and 5 apply; from containers on a network with the pinned subnet 172.20.0.0/24 (enable_icc false)
//     and on the default bridge: 192.168.1.2:80, 10.0.0.1 and 169.254.169.254 are blocked, 203.0.113.10:443
//     and the lab DNS are reached (all of them were reached before Step 4);
//   - DOCKER-USER's order on the live kernel, FORWARD's first rule, icc off on the bridge, userland-proxy off,
//     the data root kept (the imported image is still there); the same after `systemctl restart docker` and
//     after a reboot is TestLabFullRun's (there after the real Steps 0–7, from the gateway's network and the
//     default bridge), which keeps the lab run within CI's time;
//   - a second run plans "No changes" for both steps.
func TestLabSteps45(t *testing.T) {
	l := Start(t)
	ProveLiveness(t, l)
	if err := l.InstallBinary(); err != nil {
		t.Fatalf("the project binary could not be built or installed: %v", err)
	}
	answers, err := os.ReadFile(filepath.Join(srcDir(), "testdata", "lab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WriteFile("/root/lab.yaml", answers, 0o600); err != nil {
		t.Fatal(err)
	}
	l.Logf("docker: %s", strings.TrimSpace(l.MustRun(t, "docker version --format '{{.Server.Version}}'; iptables --version; systemctl cat docker | grep -E '^(ExecStart|EnvironmentFile)'")))

	// The operator's setup: their daemon.json (data root elsewhere) with the image on it, UFW on, and the
	// compose-style network with the pinned subnet.
	done := l.Phase("operator setup: daemon.json with data-root, image, UFW, labnet")
	if err := l.WriteFile("/etc/docker/daemon.json", []byte(step45OperatorDaemonJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	l.MustRun(t, "systemctl restart docker && docker import /opt/lab/busybox-rootfs.tar lab/busybox >/dev/null && "+
		"docker network create --subnet 172.20.0.0/24 -o com.docker.network.bridge.enable_icc=false labnet >/dev/null && "+
		"ufw allow proto tcp from "+AdminAddr+" to any port 22 >/dev/null && ufw --force enable")
	if root := strings.TrimSpace(l.MustRun(t, "docker info --format '{{.DockerRootDir}}'")); root != "/srv/docker" {
		t.Fatalf("the operator's data root is not in use: %q", root)
	}
	done()
	// Before Step 4 every target answers from the pinned network too, so a later block means the firewall.
	before := step45Container(t, l, "labnet")
	for _, p := range step45Probes {
		if !before[p.name] {
			t.Fatalf("before Step 4, %s did not answer from a container on labnet: a later failure would prove nothing", p.name)
		}
	}
	l.Logf("before Step 4: every probe target answers from a container on labnet")

	t.Run("step5-restore", func(t *testing.T) {
		done := l.Phase("Step 5 with a conflicting dockerd flag: automatic restore")
		defer done()
		// The unit's own ExecStart with --icc=false added, as an operator's drop-in would do it.
		execStart := ""
		for _, line := range strings.Split(l.MustRun(t, "systemctl cat docker"), "\n") {
			if strings.HasPrefix(line, "ExecStart=") && strings.TrimSpace(line) != "ExecStart=" {
				execStart = strings.TrimSpace(line)
			}
		}
		if execStart == "" {
			t.Fatal("docker.service has no ExecStart")
		}
		dropIn := "[Service]\nExecStart=\n" + execStart + " --icc=false\n"
		l.Logf("drop-in: %q", dropIn)
		l.MustRun(t, "mkdir -p /etc/systemd/system/docker.service.d")
		if err := l.WriteFile("/etc/systemd/system/docker.service.d/10-lab-icc-flag.conf", []byte(dropIn), 0o644); err != nil {
			t.Fatal(err)
		}
		l.MustRun(t, "systemctl daemon-reload && systemctl restart docker && docker info --format '{{.ServerVersion}}'")
		t0 := time.Now()
		o, e, code, err := l.RunTimeout("openclaw-harden apply --answers /root/lab.yaml --yes --step 5", nil, 6*time.Minute)
		l.Logf("apply --step 5 with the conflicting flag: exit %d in %.1fs", code, time.Since(t0).Seconds())
		if err != nil || code != 1 {
			t.Fatalf("apply --step 5 must fail (exit 1): exit %d %v\n%s\n%s", code, err, o, e)
		}
		all := o + e
		if !strings.Contains(all, "previous file was restored and Docker runs again") {
			t.Errorf("the failure does not say the file was restored:\n%s", all)
		}
		if !strings.Contains(all, "specified both as a flag and in the configuration file") {
			t.Errorf("the failure does not carry dockerd's reason from the journal:\n%s", all)
		}
		for _, line := range strings.Split(all, "\n") {
			if strings.Contains(line, "restored") || strings.Contains(line, "specified both") {
				l.Logf("  %s", strings.TrimSpace(line))
			}
		}
		if got, _ := l.ReadFile("/etc/docker/daemon.json"); string(got) != step45OperatorDaemonJSON {
			t.Errorf("daemon.json after the restore is not the operator's file:\n%s", got)
		}
		if a := strings.TrimSpace(l.MustRun(t, "systemctl is-active docker; docker image inspect -f '{{.Id}}' lab/busybox >/dev/null && echo image-ok")); a != "active\nimage-ok" {
			t.Errorf("Docker after the restore: %q", a)
		}
		l.MustRun(t, "rm /etc/systemd/system/docker.service.d/10-lab-icc-flag.conf && systemctl daemon-reload && systemctl restart docker")
	})

	t.Run("apply", func(t *testing.T) {
		for _, step := range []int{4, 5} {
			done := l.Phase(fmt.Sprintf("openclaw-harden apply --step %d", step))
			o, e, code, err := l.RunTimeout(fmt.Sprintf("openclaw-harden apply --answers /root/lab.yaml --yes --step %d", step), nil, 6*time.Minute)
			done()
			if err != nil || code != 0 {
				t.Fatalf("apply --step %d: exit %d %v\nstdout:\n%s\nstderr:\n%s", step, code, err, o, e)
			}
			t.Logf("apply --step %d:\n%s", step, o)
		}
		step45LiveChain(t, l, "after apply")
		step45Isolated(t, l, "after apply")
		daemon, _ := l.ReadFile("/etc/docker/daemon.json")
		for _, want := range []string{`"data-root": "/srv/docker"`, `"tag": "{{.Name}}"`, `"max-file": "3"`, `"icc": false`, `"userland-proxy": false`, `"no-new-privileges": true`} {
			if !strings.Contains(string(daemon), want) {
				t.Errorf("daemon.json lacks %s:\n%s", want, daemon)
			}
		}
		if strings.Contains(string(daemon), "default-network-opts") {
			t.Errorf("daemon.json has default-network-opts, which Docker 20.10 ignores:\n%s", daemon)
		}
		step45Daemon(t, l, "after apply")
		step45Verify(t, l, 4, "after apply")
		step45Verify(t, l, 5, "after apply")
	})

	t.Run("second-run", func(t *testing.T) {
		for _, step := range []int{4, 5} {
			o, e, code, err := l.Run(fmt.Sprintf("openclaw-harden plan --answers /root/lab.yaml --step %d", step))
			if err != nil || code != 0 || !strings.Contains(o, "No changes") {
				t.Errorf("second run, plan --step %d: exit %d %v, want \"No changes\":\n%s\n%s", step, code, err, o, e)
			}
		}
	})
}

// step45Daemon checks Step 5's effects on the running daemon, not the file.
func step45Daemon(t *testing.T, l *Lab, stage string) {
	t.Helper()
	opts := l.MustRun(t, "docker network inspect bridge --format '{{json .Options}}'")
	if !strings.Contains(opts, `"com.docker.network.bridge.enable_icc":"false"`) {
		t.Errorf("%s: icc is not off on the default bridge: %s", stage, opts)
	}
	info := strings.TrimSpace(l.MustRun(t, "docker info --format '{{.LoggingDriver}} {{.DockerRootDir}}'; docker image inspect -f ok lab/busybox"))
	if info != "json-file /srv/docker\nok" {
		t.Errorf("%s: log driver, data root, image: %q", stage, info)
	}
	nat := l.MustRun(t, "iptables -t nat -S OUTPUT")
	if strings.Contains(nat, "! -d 127.0.0.0/8") || !strings.Contains(nat, "-j DOCKER") {
		t.Errorf("%s: nat OUTPUT still excludes loopback (userland proxy on):\n%s", stage, nat)
	}
	nnp := l.MustRun(t, "docker run --rm --network none lab/busybox grep NoNewPrivs /proc/self/status")
	if !strings.Contains(nnp, "1") {
		t.Errorf("%s: a new container has %q", stage, nnp)
	}
	l.Logf("%s: bridge icc=false, json-file on /srv/docker, hairpin NAT (no userland proxy), %s", stage, strings.TrimSpace(nnp))
}
