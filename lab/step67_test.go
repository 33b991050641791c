package lab

// Steps 6 and 7 on the lab VM with the REAL OpenClaw gateway: no registry is reachable from the VM, so
// lab/openclaw-image.sh builds a rootfs (openclaw 2026.9.6 from npm on Node 24, uid 1000, /app) which is
// streamed over SSH into `docker import`. Step 6 deploys it with the generated compose file (docker-compose
// v1, the only compose on Debian 12) and must see it healthy; port 18789 on the VM must be closed to the LAN
// (shown open with a listener on 0.0.0.0 first, so the closed port means the 127.0.0.1 publish) while
// 127.0.0.1:18789/healthz answers on the VM. Step 7 patches the config, restarts the gateway, and must pass
// OpenClaw's own audit run inside the container.

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const labOpenClawImage = "lab/openclaw:2026.9.6"

func TestLabSteps67(t *testing.T) {
	l := Start(t)
	out, err := exec.Command(filepath.Join(srcDir(), "openclaw-image.sh")).Output()
	if err != nil {
		t.Skipf("no OpenClaw rootfs (lab/openclaw-image.sh needs lab/openclaw-install.sh's npm cache): %v", err)
	}
	rootfs := strings.TrimSpace(string(out))
	if err := l.InstallBinary(); err != nil {
		t.Fatalf("the project binary could not be built or installed: %v", err)
	}
	answers, err := os.ReadFile(filepath.Join(srcDir(), "testdata", "lab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	answers = append(answers, []byte("image: "+labOpenClawImage+"\n")...)
	if err := l.WriteFile("/root/lab67.yaml", answers, 0o600); err != nil {
		t.Fatal(err)
	}

	done := l.Phase("docker import of the OpenClaw rootfs (streamed over SSH)")
	f, err := os.Open(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	o, e, code, err := l.RunTimeout("docker import --change 'USER node' --change 'WORKDIR /app' --change 'ENV HOME=/home/node' "+
		"--change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'CMD [\"node\",\"openclaw.mjs\",\"gateway\"]' - "+labOpenClawImage, f, 20*time.Minute)
	f.Close()
	if err != nil || code != 0 {
		t.Fatalf("docker import: exit %d %v\n%s\n%s", code, err, o, e)
	}
	done()

	// Control: a listener on 0.0.0.0:18789 on the VM is reachable from the LAN host, so a closed port later
	// means the deployment, not a missing route or a firewall.
	l.MustRun(t, "(busybox nc -l -p 18789 </dev/null >/dev/null 2>&1 & echo $! > /run/lab-nc.pid); sleep 1")
	if c, err := DialFrom(NSLAN, net.JoinHostPort(VMAddr, "18789"), 5*time.Second); err != nil {
		t.Fatalf("control: a listener on 0.0.0.0:18789 on the VM is not reachable from %s (%v): the later check would prove nothing", LANHostAddr, err)
	} else {
		c.Close()
	}
	l.MustRun(t, "kill $(cat /run/lab-nc.pid) 2>/dev/null; sleep 1")

	done = l.Phase("Step 6: compose deploy of the real gateway, health wait")
	o, e, code, err = l.RunTimeout("openclaw-harden apply --answers /root/lab67.yaml --yes --step 6", nil, 20*time.Minute)
	l.Logf("apply --step 6: exit %d\n%s\n%s", code, o, e)
	if err != nil || code != 0 {
		t.Fatalf("Step 6 failed: exit %d %v\n%s", code, err, step67Debug(l))
	}
	done()
	token := strings.TrimPrefix(strings.TrimSpace(l.MustRun(t, "grep ^OPENCLAW_GATEWAY_TOKEN= /opt/openclaw/.env")), "OPENCLAW_GATEWAY_TOKEN=")
	if len(token) != 64 {
		t.Errorf("the generated token has %d characters", len(token))
	}
	if strings.Contains(o+e, token) {
		t.Error("apply printed the gateway token")
	}
	if j, _ := l.ReadFile("/var/lib/openclaw-harden/journal.log"); strings.Contains(string(j), token) {
		t.Error("the journal holds the gateway token")
	}
	l.Logf("on the VM: %s", l.MustRun(t, "curl -fsS -m 10 http://127.0.0.1:18789/healthz; echo; ss -H -tlnp 'sport = :18789'; stat -c '%a %u %n' /opt/openclaw/.env /opt/openclaw/config /opt/openclaw/config/openclaw.json"))
	if c, err := DialFrom(NSLAN, net.JoinHostPort(VMAddr, "18789"), 5*time.Second); err == nil {
		c.Close()
		t.Errorf("port 18789 on the VM answers from the LAN host %s: the gateway is exposed", LANHostAddr)
	}
	if c, err := DialFrom(NSAdmin, net.JoinHostPort(VMAddr, "18789"), 5*time.Second); err == nil {
		c.Close()
		t.Errorf("port 18789 on the VM answers from the admin host: only an SSH tunnel may reach it")
	}

	done = l.Phase("Step 7: policy, restart, OpenClaw's audit in the container")
	o, e, code, err = l.RunTimeout("openclaw-harden apply --answers /root/lab67.yaml --yes --step 7", nil, 20*time.Minute)
	l.Logf("apply --step 7: exit %d\n%s\n%s", code, o, e)
	if err != nil || code != 0 {
		t.Fatalf("Step 7 failed: exit %d %v\n%s", code, err, step67Debug(l))
	}
	done()

	done = l.Phase("second run: verify only, plans empty")
	o, e, code, err = l.RunTimeout("openclaw-harden verify --answers /root/lab67.yaml --step 6 && openclaw-harden verify --answers /root/lab67.yaml --step 7 && openclaw-harden plan --answers /root/lab67.yaml --step 6 && openclaw-harden plan --answers /root/lab67.yaml --step 7", nil, 10*time.Minute)
	l.Logf("second run: exit %d\n%s\n%s", code, o, e)
	if err != nil || code != 0 {
		t.Errorf("second run failed: exit %d %v", code, err)
	}
	if strings.Count(o, "No changes") < 2 {
		t.Errorf("the second plans are not empty")
	}
	done()
}

// step67Debug is what a failed deploy needs to be understood: container state, both log streams, memory.
func step67Debug(l *Lab) string {
	o, _, _, _ := l.Run("docker ps -a; docker inspect --format '{{json .State}} restarts={{.RestartCount}}' openclaw-gateway; " +
		"docker logs --tail 60 openclaw-gateway 2>&1 | sed 's/\\x1b\\[[0-9;]*m//g'; free -m; dmesg | grep -iE 'oom|killed' | tail -5")
	return o
}
