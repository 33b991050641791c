package lab

// TestLabFullRun is the whole tool on one fresh VM with the REAL OpenClaw gateway (lab/openclaw-image.sh):
//
//   - before hardening, every must-fail target answers (ProveLiveness, the gateway port from the LAN);
//   - Steps 0–7 headless, each first killed (SIGKILL, the failpoint in system/crash.go) in the middle of its
//     apply (crashAfter) and then applied again: the re-plan sees the interrupted step, finishes it, and it verifies; no file the
//     journal says was written is half-written (its sha256 matches the journal's);
//   - every step verifies; a second apply changes no file and runs no state-changing command;
//   - the Step 8 matrix passes (LAN, VM, container); the report; the profile's commands vs the matrix, timed;
//   - mutations: each deliberate misconfiguration of issue #9 makes verify exit 1 naming the right step and check,
//     and is undone (proven by that step verifying again);
//   - the matrix passes after `systemctl restart docker` and after a reboot;
//   - the admin's own SSH session, opened before the first step, is still alive;
//   - `rollback` restores every file the tool wrote byte-for-byte (checksums of the fresh VM).
// Step 3 is the hypervisor's layer (its own test, TestLabStep3ProxmoxLayer): it is not applied here.

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// fullSteps are the steps the VM applies itself.
var fullSteps = []int{0, 1, 2, 4, 5, 6, 7}

const fullAnswers = "/root/lab.yaml"

// stepResult is one `verify --step N --json` run.
type stepResult struct {
	Step   int
	Exit   int
	MS     int64 // wall time of this step's verify in the VM
	OK     bool
	Checks []step8Check
}

func (r stepResult) failed() []string {
	var ids []string
	for _, c := range r.Checks {
		if !c.OK {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// verifySteps runs `verify --step N --json` for each step concurrently in the VM (they only read) and returns
// the results by step.
func verifySteps(t *testing.T, l *Lab, stepsToRun []int) map[int]stepResult {
	t.Helper()
	var sb strings.Builder
	sb.WriteString("d=$(mktemp -d); ")
	for _, s := range stepsToRun {
		fmt.Fprintf(&sb, "(t0=$(date +%%s%%N); openclaw-harden verify --answers %s --step %d --json >$d/%d.json 2>$d/%d.err; echo $? $(( ($(date +%%s%%N) - t0) / 1000000 )) >$d/%d.rc) & ", fullAnswers, s, s, s, s)
	}
	sb.WriteString("wait; for f in $d/*.rc; do n=$(basename $f .rc); echo \"=== STEP $n RC $(cat $f)\"; cat $d/$n.json; echo; done; rm -rf $d")
	o, e, code, err := l.RunTimeout(sb.String(), nil, 10*time.Minute)
	if err != nil || code != 0 {
		t.Fatalf("verify: exit %d %v\n%s\n%s", code, err, o, e)
	}
	res := map[int]stepResult{}
	for _, part := range strings.Split(o, "=== STEP ")[1:] {
		var r stepResult
		head, body, _ := strings.Cut(part, "\n")
		fmt.Sscanf(head, "%d RC %d %d", &r.Step, &r.Exit, &r.MS)
		var rep step8JSON
		if err := json.Unmarshal([]byte(body), &rep); err != nil || len(rep.Steps) != 1 {
			t.Fatalf("verify --step %d: exit %d, not the verify JSON (%v):\n%s", r.Step, r.Exit, err, body)
		}
		r.OK, r.Checks = rep.Steps[0].OK, rep.Steps[0].Checks
		res[r.Step] = r
	}
	if len(res) != len(stepsToRun) {
		t.Fatalf("verify ran %d of %d steps:\n%s", len(res), len(stepsToRun), o)
	}
	var times []string
	for _, s := range stepsToRun {
		times = append(times, fmt.Sprintf("%d:%.1fs", s, float64(res[s].MS)/1000))
	}
	l.Logf("verify wall times in the VM (concurrent): %s", strings.Join(times, " "))
	return res
}

// assertAllPass: every step's verify exits 0 with every check OK.
func assertAllPass(t *testing.T, l *Lab, stage string, stepsToRun []int) {
	t.Helper()
	done := l.Phase("verify steps " + fmt.Sprint(stepsToRun) + ": " + stage)
	res := verifySteps(t, l, stepsToRun)
	done()
	for _, s := range stepsToRun {
		r := res[s]
		if r.Exit != 0 || !r.OK {
			var why []string
			for _, c := range r.Checks {
				if !c.OK {
					why = append(why, fmt.Sprintf("%s: got %s (%s)", c.ID, c.Got, c.Reason))
				}
			}
			t.Errorf("%s: verify --step %d exit %d: %s", stage, s, r.Exit, strings.Join(why, "; "))
		}
	}
}

// writtenFiles reads the journal's "write: PATH (N bytes, sha256 X" lines: the last sha256 per path.
var journalWrite = regexp.MustCompile(`step=(\d+) write: (\S+) \(\d+ bytes, sha256 ([0-9a-f]{12})`)

func journalWrites(journal string) map[string]string {
	out := map[string]string{}
	for _, m := range journalWrite.FindAllStringSubmatch(journal, -1) {
		out[m[2]] = m[3]
	}
	return out
}

// checksums lists sha256 of every regular file under /etc and /opt in the VM.
func checksums(t *testing.T, l *Lab) map[string]string {
	t.Helper()
	o := l.MustRun(t, "find /etc /opt -xdev -type f -print0 2>/dev/null | sort -z | xargs -0 sha256sum")
	out := map[string]string{}
	for _, line := range strings.Split(o, "\n") {
		if sum, path, ok := strings.Cut(line, "  "); ok {
			out[path] = sum
		}
	}
	return out
}

func TestLabFullRun(t *testing.T) {
	l := Start(t)
	done := l.Phase("the OpenClaw rootfs (lab/openclaw-image.sh: built, or from its cache)")
	out, err := exec.Command(filepath.Join(srcDir(), "openclaw-image.sh")).Output()
	if err != nil {
		t.Skipf("no OpenClaw rootfs (lab/openclaw-image.sh needs lab/openclaw-install.sh's npm cache): %v", err)
	}
	rootfs := strings.TrimSpace(string(out))
	done()
	rec := ProveLiveness(t, l)
	if err := l.InstallBinary(); err != nil {
		t.Fatalf("the project binary could not be built or installed: %v", err)
	}
	answers, err := os.ReadFile(filepath.Join(srcDir(), "testdata", "lab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	answers = append(answers, []byte("image: "+labOpenClawImage+"\n")...)
	if err := l.WriteFile(fullAnswers, answers, 0o600); err != nil {
		t.Fatal(err)
	}
	lanAnswers := string(answers) + "probes:\n  lan_host:\n    address: " + LANHostAddr + "\n    user: admin\n    key_file: /root/lan2.key\n"
	if err := l.WriteFile("/root/lab-lan.yaml", []byte(lanAnswers), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.Copy(l.Image.Key, "/root/lan2.key"); err != nil {
		t.Fatal(err)
	}
	l.MustRun(t, "chmod 600 /root/lan2.key")
	fresh := checksums(t, l)

	// The operator's own session: opened before anything changes, it must survive every step.
	admin, err := l.SSHFrom(NSAdmin, "admin", ssh.PublicKeys(l.Signer()))
	if err != nil {
		t.Fatalf("the admin's SSH session from %s: %v", AdminAddr, err)
	}
	defer admin.Close()

	t.Run("before", func(t *testing.T) {
		done := l.Phase("before hardening: gateway port liveness, LAN probes over SSH")
		defer done()
		step8GatewayLiveness(t, l, rec)
		js, _ := json.Marshal(rec)
		l.MustRun(t, "install -d -m 0700 /var/lib/openclaw-harden")
		if err := l.WriteFile("/var/lib/openclaw-harden/liveness.json", js, 0o600); err != nil {
			t.Fatal(err)
		}
		cs, code, _, _ := step8Run(t, l, "openclaw-harden verify --answers /root/lab-lan.yaml --step 8 --json")
		for _, c := range cs {
			if c.ID == "step8.lan.ssh" && (c.OK || !strings.HasPrefix(c.Got, "reached")) {
				t.Errorf("before hardening, SSH from the LAN host: %+v; want reached (a failed check)", c)
			}
		}
		if code != 1 {
			t.Errorf("before hardening verify --step 8 exit %d, want 1", code)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	// The import takes minutes under emulation and only Step 6 needs the image: it runs while Steps 0–4 are
	// applied (they do not touch Docker), and Step 5, which restarts Docker, waits for it.
	imported, finished := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(finished)
		imported <- fullImport(l, rootfs)
	}()
	t.Cleanup(func() { <-finished }) // it logs to t: not after the test ended (runs before the lab's teardown)

	t.Run("apply-crash-resume", func(t *testing.T) {
		for _, step := range fullSteps {
			if step == 5 {
				done := l.Phase("wait for the docker import to end")
				err := <-imported
				done()
				if err != nil {
					t.Fatal(err)
				}
			}
			fullCrashAndResume(t, l, step)
			if step == 1 {
				assertSnapshot(t, l) // Step 1's snapshot says what the VM is
			}
			if t.Failed() {
				t.FailNow()
			}
		}
		token := strings.TrimPrefix(strings.TrimSpace(l.MustRun(t, "grep ^OPENCLAW_GATEWAY_TOKEN= /opt/openclaw/.env")), "OPENCLAW_GATEWAY_TOKEN=")
		if j, _ := l.ReadFile("/var/lib/openclaw-harden/journal.log"); len(token) < 32 || strings.Contains(string(j), token) {
			t.Errorf("the journal holds the gateway token (or there is none: %d characters)", len(token))
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("verify", func(t *testing.T) {
		assertAllPass(t, l, "after Steps 0–7", fastSteps)
		step45LiveChain(t, l, "after Steps 0–7")
		step45Isolated(t, l, "after Steps 0–7", "openclaw_openclaw", "bridge")
		step8Assert(t, l, "after Steps 0–7 (real gateway)", "openclaw-harden verify --answers "+fullAnswers+" --step 8 --json")
		if c, err := DialFrom(NSLAN, net.JoinHostPort(VMAddr, "18789"), 5*time.Second); err == nil {
			c.Close()
			t.Errorf("port 18789 on the VM answers from the LAN host %s", LANHostAddr)
		}
		// The gateway through an SSH tunnel from the admin host: the only way in.
		if body, err := tunnelGet(admin, "127.0.0.1:18789", "/healthz"); err != nil || !strings.Contains(body, "ok") {
			t.Errorf("GET /healthz through an SSH tunnel from %s: %q %v", AdminAddr, body, err)
		}
		// The container cannot reach the LAN host (the container's matrix says so too; this is the lab's view).
		if o, _, code, _ := l.Run("docker exec openclaw-gateway node -e \"require('net').connect({host:'192.168.1.2',port:80,timeout:5000}).on('connect',()=>{console.log('CONNECTED');process.exit(0)}).on('timeout',()=>{console.log('timeout');process.exit(1)}).on('error',e=>{console.log(e.code);process.exit(1)})\""); code == 0 || strings.Contains(o, "CONNECTED") {
			t.Errorf("the gateway container reached 192.168.1.2:80: %s", o)
		}
	})

	t.Run("admin-session", func(t *testing.T) {
		// Opened before Step 0 and kept through every apply (sshd is reloaded, never restarted).
		sess, err := admin.NewSession()
		if err != nil {
			t.Fatalf("the admin's SSH session did not survive the run: %v", err)
		}
		defer sess.Close()
		if out, err := sess.Output("id -un"); err != nil || strings.TrimSpace(string(out)) != "admin" {
			t.Errorf("the admin's session: %q %v", out, err)
		}
	})
	t.Run("cis-benchmark", func(t *testing.T) {
		// docker-bench-security judges every running container: only the gateway runs now.
		done := l.Phase("docker-bench-security, sections 2 and 5")
		r, err := CISBench(l, "/root/cis-bench")
		done()
		if err != nil {
			t.Fatal(err)
		}
		l.Logf("docker-bench-security: containers %v", r.Containers)
		for _, w := range r.ControlledWarns() {
			t.Errorf("docker-bench-security WARN on what Steps 5–6 control: %s", w)
		}
		for _, m := range r.Missing() {
			t.Errorf("docker-bench-security did not run the check for %s", m)
		}
	})
	t.Run("step3-in-the-vm", func(t *testing.T) {
		// Step 3 is the hypervisor's: in the VM it saves the file for the node and waits for the operator's
		// confirmations (or the API), so its verify fails headless; a second run plans nothing.
		o, e, code, _ := l.RunTimeout("openclaw-harden apply --answers "+fullAnswers+" --yes --step 3", nil, 5*time.Minute)
		if code != 1 || !strings.Contains(o, "not confirmed") || !strings.Contains(o, "/var/lib/openclaw-harden/proxmox/100.fw") {
			t.Errorf("apply --step 3 in the VM: exit %d, want 1 with the unconfirmed switches named\n%s\n%s", code, o, e)
		}
		if o, e, code, _ := l.Run("openclaw-harden plan --answers " + fullAnswers + " --step 3"); code != 0 || !strings.Contains(o, "No changes") {
			t.Errorf("second plan --step 3: exit %d, want No changes\n%s\n%s", code, o, e)
		}
	})
	t.Run("idempotence", func(t *testing.T) { fullIdempotence(t, l) })
	t.Run("report", func(t *testing.T) { step8Report(t, l, "openclaw-harden report --answers "+fullAnswers) })
	t.Run("benchmark", func(t *testing.T) {
		l.MustRun(t, "docker run -d --name labgw --network openclaw_openclaw lab/busybox sh -c "+shellQuote(step8GatewayCmd)+" >/dev/null && sleep 2")
		defer l.Run("docker rm -f labgw")
		step8Bench(t, l)
	})
	t.Run("mutations", func(t *testing.T) { fullMutations(t, l) })
	t.Run("docker-restart", func(t *testing.T) {
		// The last mutations ran with the gateway stopped: it runs again, and Docker is restarted with it
		// running (dockerd stops it and, by its restart policy, starts it again, as on a real VM).
		l.MustRun(t, "docker start openclaw-gateway >/dev/null && systemctl restart docker")
		// Right after the restart, what Docker rewrites when it starts: its chains and FORWARD's jump, the
		// daemon's settings. The container probes, the matrix (which probes the gateway on 127.0.0.1) and
		// Step 6 wait for the gateway's health check: while it starts it takes both CPUs under emulation,
		// and a CI run (4420 s, a slow machine) failed this subtest with the probes running beside it.
		assertAllPass(t, l, "after systemctl restart docker", []int{4, 5})
		step45LiveChain(t, l, "after systemctl restart docker")
		fullWaitGateway(t, l)
		step45Isolated(t, l, "after systemctl restart docker", "openclaw_openclaw", "bridge")
		assertAllPass(t, l, "after systemctl restart docker", []int{6, 8})
		fullProven(t, l, "docker_restart")
	})
	t.Run("reboot", func(t *testing.T) {
		d, err := l.Reboot()
		if err != nil {
			t.Fatal(err)
		}
		l.Logf("reboot to SSH: %.1fs", d.Seconds())
		// SSH answers before Docker has started (and put its FORWARD jump to DOCKER-USER in place; no
		// container runs before that): verify once Docker is up.
		l.MustRun(t, "for i in $(seq 300); do docker info >/dev/null 2>&1 && break; sleep 1; done; systemctl is-active docker")
		assertAllPass(t, l, "after reboot", []int{0, 2, 4, 5})
		step45LiveChain(t, l, "after reboot")
		fullWaitGateway(t, l) // as after the Docker restart
		step45Isolated(t, l, "after reboot", "openclaw_openclaw", "bridge")
		assertAllPass(t, l, "after reboot", []int{6, 8})
		fullProven(t, l, "reboot")
	})
	t.Run("rollback", func(t *testing.T) { fullRollback(t, l, fresh) })
	t.Run("shutdown", func(t *testing.T) {
		if err := l.Shutdown(); err != nil {
			t.Fatal(err)
		}
	})
}

// fullImport streams the OpenClaw rootfs into the VM's Docker as the lab image.
func fullImport(l *Lab, rootfs string) error {
	done := l.Phase("docker import of the OpenClaw rootfs (streamed over SSH)")
	defer done()
	// Decompressed here, where it is cheap: gunzip inside the emulated VM made the import 35 s slower
	// (210 s against 175 s, measured).
	gunzip := exec.Command("gzip", "-dc", rootfs)
	f, err := gunzip.StdoutPipe()
	if err != nil {
		return err
	}
	if err := gunzip.Start(); err != nil {
		return err
	}
	// No NODE_COMPILE_CACHE: measured in the lab VM, the gateway answered /healthz after 251 s without it,
	// 217 s while writing the cache and 270 s with it warm; compiling is not what is slow under emulation.
	o, e, code, err := l.RunTimeout("docker import --change 'USER node' --change 'WORKDIR /app' --change 'ENV HOME=/home/node' "+
		"--change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'CMD [\"node\",\"openclaw.mjs\",\"gateway\"]' - "+labOpenClawImage, f, 20*time.Minute)
	if gerr := gunzip.Wait(); gerr != nil && err == nil {
		err = fmt.Errorf("gzip -dc %s: %w", rootfs, gerr)
	}
	if err != nil || code != 0 {
		return fmt.Errorf("docker import: exit %d %v\n%s\n%s", code, err, o, e)
	}
	return nil
}
