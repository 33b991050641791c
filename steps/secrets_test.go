package steps

// Secrets never leave the files they belong in: a Session on a fake host with a Telegram bot token, a gateway
// token and an API key in an existing .env, literal tokens in an existing openclaw.json and a Proxmox API token
// in a token file plans, renders every diff, applies and verifies Steps 3, 6 and 7 (and plans every other
// step), then once more in dry-run mode, then through the failure paths that quote what a command printed
// (compose up echoing .env values, an unhealthy gateway whose health check and logs print the token, a
// Proxmox node that echoes the Authorization header, an audit whose findings quote the token). Every string
// the operator or a JSON reader could see, the journal and every file in the state dir are scanned. The only
// files allowed to hold the secrets are the ones they live in (.env, openclaw.json, the token file, all
// outside the state dir) and the backups of those files under <state dir>/backups/ (a backup of .env is .env).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"openclaw-harden/system"
)

// The secrets of this test. Each contains "SECRET-", which is scanned for too, so a part of one is found.
const (
	secTelegramEnv = "123456:SECRET-BOT-TOKEN-abcdef"
	secGatewayEnv  = "SECRET-GATEWAY-TOKEN-0123456789abcdef0123"
	secAPIKeyEnv   = "sk-SECRET-ANTHROPIC-KEY-4242"
	secConfigTok   = "SECRET-LITERAL-CONFIG-TOKEN-987654321"
	secConfigBot   = "654321:SECRET-LITERAL-BOT-TOKEN-zyx"
	secPVE         = "SECRET-PVE-5e1f2a3b-0c4d-4e5f-8a9b"
	secPVEToken    = "fwtool@pve!fw=" + secPVE
)

var allSecrets = []string{secTelegramEnv, secGatewayEnv, secAPIKeyEnv, secConfigTok, secConfigBot, secPVE, secPVEToken, "SECRET-"}

// leakScan collects everything shown and says where a secret appears.
type leakScan struct {
	mu   sync.Mutex
	seen []string // "where: text"
}

func (l *leakScan) add(where, text string) {
	l.mu.Lock()
	l.seen = append(l.seen, where+"\x00"+text)
	l.mu.Unlock()
}

func (l *leakScan) addErr(where string, err error) {
	if err != nil {
		l.add(where+" (error)", err.Error())
	}
}

func (l *leakScan) plan(where string, p Plan, err error) {
	l.addErr(where, err)
	l.add(where+" blocked", p.Blocked)
	l.add(where+" risk", p.Risk)
	l.add(where+" summary", p.Summary())
	for i, n := range p.Notes {
		l.add(fmt.Sprintf("%s note %d", where, i), n)
	}
	for i, c := range p.Commands {
		l.add(fmt.Sprintf("%s command %d", where, i), c)
	}
	for _, c := range p.Changes {
		l.add(where+" target", c.Target)
		l.add(where+" warning "+c.Target, c.Warning)
		l.add(where+" diff "+c.Target, c.Diff())
	}
}

func (l *leakScan) checks(where string, cs []Check) {
	b, err := json.Marshal(cs) // what verify --json prints
	if err != nil {
		panic(err)
	}
	l.add(where+" checks (json)", string(b))
	for _, c := range cs {
		l.add(where+" check "+c.ID, fmt.Sprintf("%s: expected %s, got %s (%s)", c.Name, c.Expect, c.Got, c.Reason))
	}
}

// stateDir adds every file under dir except the backups (copies of the files the secrets live in).
func (l *leakScan) stateDir(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "backups" && filepath.Dir(p) == dir {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			l.add("state dir file "+strings.TrimPrefix(p, dir), string(data))
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}

func (l *leakScan) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.seen {
		where, text, _ := strings.Cut(s, "\x00")
		for _, sec := range allSecrets {
			if i := strings.Index(text, sec); i >= 0 {
				from, to := max(0, i-80), min(len(text), i+len(sec)+40)
				t.Errorf("secret %q in %s: …%s…", sec, where, text[from:to])
			}
		}
	}
}

// secretsHost is step67Host with the operator's secrets in place, a Proxmox token file and a fake node.
func secretsHost(t *testing.T, pve http.Handler) (*system.Host, *system.FakeRunner, Answers, string) {
	t.Helper()
	h, f, root := step67Host(t)
	env := "# the operator's own\nOPENCLAW_GATEWAY_TOKEN=" + secGatewayEnv + "\nTELEGRAM_BOT_TOKEN=" + secTelegramEnv +
		"\nANTHROPIC_API_KEY=" + secAPIKeyEnv + "\n"
	cfg := "{ gateway: { mode: 'local', bind: 'loopback', auth: { mode: 'token', token: '" + secConfigTok + "' } },\n" +
		"  channels: { telegram: { botToken: \"" + secConfigBot + "\", dmPolicy: 'open', allowFrom: ['*'] } },\n}\n"
	for p, data := range map[string]string{"/opt/openclaw/.env": env, "/opt/openclaw/config/openclaw.json": cfg, "/root/.pve-token": secPVEToken + "\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// .env readable by others: Step 6 rewrites it at 0600, so it is backed up (with its tokens).
	if err := os.Chmod(filepath.Join(root, "/opt/openclaw/.env"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(pve)
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	old := pveClientOptions
	pveClientOptions = system.PVEOptions{TLS: &tls.Config{RootCAs: pool}}
	t.Cleanup(func() { pveClientOptions = old })
	a := Defaults()
	a.AdminSource = "192.168.1.50"
	a.Proxmox.APIURL, a.Proxmox.TokenFile = srv.URL, "/root/.pve-token"
	return h, f, a, root
}

func TestSecretsNeverShown(t *testing.T) {
	ctx := context.Background()
	oldPoll := healthPollInterval
	healthPollInterval = 0
	defer func() { healthPollInterval = oldPoll }()

	h, f, a, root := secretsHost(t, system.NewFakePVE(secPVEToken, "pve", 100))
	var l leakScan
	h.OnJournal(func(line string) { l.add("journal line", line) })
	f.Set(upV1, system.FakeResponse{Stdout: "Creating openclaw-gateway ... done\n"})
	f.Set(inspectGW, system.FakeResponse{Stdout: fakeInspect("healthy")})
	f.Set("docker restart -t 60 openclaw-gateway", system.FakeResponse{Stdout: "openclaw-gateway\n"})
	f.Set("ss -H -tlnp sport = :18789", system.FakeResponse{Stdout: "LISTEN 0 4096 127.0.0.1:18789 0.0.0.0:*\n"})
	f.Set("docker network inspect abc123", system.FakeResponse{Stdout: `[{"Name":"openclaw_openclaw","Options":{"com.docker.network.bridge.enable_icc":"false"},"IPAM":{"Config":[{"Subnet":"172.20.0.0/24"}]}}]`})
	// The audit quotes the token in a finding (as a misconfigured gateway's message might).
	f.Set(strings.Join(auditArgv(true), " "), system.FakeResponse{Stdout: `{"ts":1,"summary":{"critical":1,"warn":0,"info":0},"findings":[` +
		`{"checkId":"gateway.token_in_config","severity":"critical","title":"token ` + secConfigTok + `","detail":"telegram botToken ` + secConfigBot + ` and ` + secGatewayEnv + ` are literals"}]}`})

	s := NewSession(h, a, nil)
	byID := map[int]Step{}
	for _, st := range s.Steps {
		byID[st.ID()] = st
	}
	// Every step is planned (most fail on this fake: their errors are output too).
	for _, st := range s.Steps {
		if st.ID() == 8 {
			continue // the matrix probes this machine's network
		}
		p, err := s.Plan(ctx, st)
		l.plan(fmt.Sprintf("step %d plan", st.ID()), p, err)
	}
	// Steps 3, 6 and 7: plan, apply, verify, plan again.
	for _, id := range []int{3, 6, 7} {
		st := byID[id]
		p, err := s.Plan(ctx, st)
		l.plan(fmt.Sprintf("step %d plan", id), p, err)
		if err != nil || p.Blocked != "" {
			t.Fatalf("step %d plan: %v %q", id, err, p.Blocked)
		}
		if id == 6 {
			var diffs string
			for _, c := range p.Pending() {
				diffs += c.Diff()
			}
			if !strings.Contains(diffs, "<redacted>") {
				t.Errorf("step 6 diffs redact nothing; the test's secrets are not where the step reads them:\n%s", diffs)
			}
		}
		l.addErr(fmt.Sprintf("step %d apply", id), s.Apply(ctx, st, p))
		l.checks(fmt.Sprintf("step %d verify", id), s.Verify(ctx, st))
		p2, err := s.Plan(ctx, st)
		l.plan(fmt.Sprintf("step %d second plan", id), p2, err)
	}
	for _, sec := range []string{secGatewayEnv, secTelegramEnv, secAPIKeyEnv, secConfigTok, secConfigBot, secPVE} {
		if h.Redact(sec) != "<redacted>" {
			t.Errorf("%q is not registered with the Host", sec)
		}
	}
	// Rollback of Step 6 restores .env and openclaw.json from the backups: its output is shown too.
	paths, err := s.Rollback(6)
	l.add("rollback paths", strings.Join(paths, "\n"))
	l.addErr("rollback", err)

	// The same again in dry-run mode on a fresh Host over the same root: "would" records and the plan.
	hd := system.NewFakeHost(root, filepath.Join(t.TempDir(), "dry-state"), f, true)
	hd.OnJournal(func(line string) { l.add("dry-run journal line", line) })
	sd := NewSession(hd, a, nil)
	for _, id := range []int{3, 6, 7} {
		st := byID[id]
		p, err := sd.Plan(ctx, st)
		l.plan(fmt.Sprintf("dry-run step %d plan", id), p, err)
		l.addErr(fmt.Sprintf("dry-run step %d apply", id), sd.Apply(ctx, st, p))
		l.checks(fmt.Sprintf("dry-run step %d verify", id), sd.Verify(ctx, st))
	}
	l.add("dry-run would", strings.Join(hd.Would(), "\n"))
	if _, err := os.Stat(hd.StateDir); !os.IsNotExist(err) {
		t.Errorf("dry run created its state dir: %v", err)
	}

	journal, err := os.ReadFile(filepath.Join(h.StateDir, "journal.log"))
	if err != nil || len(journal) == 0 {
		t.Fatalf("no journal: %v", err)
	}
	l.stateDir(t, h.StateDir)
	if _, err := os.Stat(filepath.Join(h.StateDir, "state.json")); err != nil {
		t.Errorf("no state.json to scan: %v", err)
	}
	l.check(t)

	// The backups hold .env and openclaw.json as they were: that is what they are for (and why the state dir
	// is 0700). They are the one place in the state dir the secrets may be, so the scan skips them.
	backedUp := map[string]bool{}
	_ = filepath.WalkDir(filepath.Join(h.StateDir, "backups"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			data, _ := os.ReadFile(p)
			for _, sec := range []string{secGatewayEnv, secConfigTok} {
				backedUp[sec] = backedUp[sec] || strings.Contains(string(data), sec)
			}
		}
		return nil
	})
	if !backedUp[secGatewayEnv] || !backedUp[secConfigTok] {
		t.Errorf("the backups of .env and openclaw.json do not hold their tokens (%v): the test no longer covers them", backedUp)
	}
}

// The failure paths: what commands and servers print is quoted in errors and checks.
func TestSecretsNeverShownOnFailure(t *testing.T) {
	ctx := context.Background()
	oldPoll, oldTimeout := healthPollInterval, healthTimeout
	healthPollInterval, healthTimeout = 0, 0
	defer func() { healthPollInterval, healthTimeout = oldPoll, oldTimeout }()

	// A Proxmox node (or a proxy before it) that quotes the Authorization header in every error.
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]any{"data": nil, "message": "authentication failure for " + r.Header.Get("Authorization"),
			"errors": map[string]string{"token": r.Header.Get("Authorization")}})
	})
	h, f, a, _ := secretsHost(t, echo)
	var l leakScan
	h.OnJournal(func(line string) { l.add("journal line", line) })
	s := NewSession(h, a, nil)
	byID := map[int]Step{}
	for _, st := range s.Steps {
		byID[st.ID()] = st
	}

	p3, err := s.Plan(ctx, byID[3])
	l.plan("step 3 plan", p3, err)
	if err == nil && p3.Blocked == "" {
		l.addErr("step 3 apply", s.Apply(ctx, byID[3], p3))
	}
	l.checks("step 3 verify", s.Verify(ctx, byID[3]))

	// compose up fails and prints the .env values it could not interpolate (docker-compose v1 quotes them).
	f.Set(upV1, system.FakeResponse{Exit: 1, Stdout: "Creating openclaw-gateway ... " + secGatewayEnv + "\n",
		Stderr: "ERROR: Invalid interpolation format for \"environment\" option in service \"openclaw-gateway\": \"" + secTelegramEnv + "\"\n" +
			"OPENCLAW_GATEWAY_TOKEN=" + secGatewayEnv + " ANTHROPIC_API_KEY=" + secAPIKeyEnv})
	p6, err := s.Plan(ctx, byID[6])
	l.plan("step 6 plan", p6, err)
	if err != nil || p6.Blocked != "" {
		t.Fatalf("step 6 plan: %v %q", err, p6.Blocked)
	}
	err = s.Apply(ctx, byID[6], p6)
	if err == nil {
		t.Fatal("compose up failed but apply did not")
	}
	l.addErr("step 6 apply (compose up fails)", err)

	// compose up works but the gateway never gets healthy; its health check and its logs print the token.
	f.Set(upV1, system.FakeResponse{Stdout: "Creating openclaw-gateway ... done\n"})
	unhealthy := strings.Replace(fakeInspect("unhealthy"), `"Output":""`, `"Output":"curl: (22) http://127.0.0.1:18789/healthz?token=`+secGatewayEnv+` returned 401"`, 1)
	f.Set(inspectGW, system.FakeResponse{Stdout: unhealthy})
	f.Set("sh -c docker logs --tail 30 openclaw-gateway 2>&1", system.FakeResponse{Stdout: "gateway: bad token " + secConfigTok + "\ntelegram: 401 for " + secTelegramEnv + "\n"})
	p6, err = s.Plan(ctx, byID[6])
	l.plan("step 6 plan (again)", p6, err)
	err = s.Apply(ctx, byID[6], p6)
	if err == nil {
		t.Fatal("the gateway is unhealthy but apply succeeded")
	}
	l.addErr("step 6 apply (unhealthy)", err)
	l.checks("step 6 verify (unhealthy)", s.Verify(ctx, byID[6]))

	// Step 7: the restart fails and prints the environment; the audit cannot run and says why, token included.
	f.Set("docker restart -t 60 openclaw-gateway", system.FakeResponse{Exit: 1, Stderr: "Error response from daemon: env TELEGRAM_BOT_TOKEN=" + secTelegramEnv})
	f.Set(strings.Join(auditArgv(true), " "), system.FakeResponse{Exit: 1, Stderr: "openclaw: invalid gateway token " + secGatewayEnv})
	p7, err := s.Plan(ctx, byID[7])
	l.plan("step 7 plan", p7, err)
	if err == nil && p7.Blocked == "" {
		l.addErr("step 7 apply (restart fails)", s.Apply(ctx, byID[7], p7))
	}
	l.checks("step 7 verify (audit fails)", s.Verify(ctx, byID[7]))

	l.stateDir(t, h.StateDir)
	l.check(t)
}

// An openclaw.json that does not parse, broken right after the literal token: the messages that say where
// it breaks must not quote it.
func TestSecretsNeverShownForABrokenConfig(t *testing.T) {
	ctx := context.Background()
	h, _, a, root := secretsHost(t, system.NewFakePVE(secPVEToken, "pve", 100))
	var l leakScan
	h.OnJournal(func(line string) { l.add("journal line", line) })
	for i, cfg := range []string{
		"{ gateway: { auth: { mode: 'token', token: '" + secConfigTok + "' oops } } }\n",
		"{ gateway: { auth: { token: '" + secConfigTok + "\n",
		"{ channels: { telegram: { botToken: " + secConfigBot + " } } }\n",
		"{ \"channels\": { \"telegram\": { \"botToken\": \"" + secConfigBot + "\" ] } }\n",
	} {
		if err := os.WriteFile(filepath.Join(root, "/opt/openclaw/config/openclaw.json"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		s := NewSession(h, a, nil)
		for _, st := range s.Steps {
			if id := st.ID(); id == 6 || id == 7 {
				p, err := s.Plan(ctx, st)
				l.plan(fmt.Sprintf("config %d: step %d plan", i, id), p, err)
				if err == nil && p.Blocked == "" {
					t.Errorf("config %d: step %d planned over a broken openclaw.json", i, id)
				}
				l.addErr(fmt.Sprintf("config %d: step %d apply", i, id), s.Apply(ctx, st, p))
				l.checks(fmt.Sprintf("config %d: step %d verify", i, id), s.Verify(ctx, st))
			}
		}
	}
	l.stateDir(t, h.StateDir)
	l.check(t)
}

// check compose: a value interpolated from a secret variable (here from the .env beside the file) is not
// quoted by a finding, not even the part a parser splits off.
func TestCheckComposeRedactsSecretValues(t *testing.T) {
	clean, err := RenderCompose(Defaults())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("OPENCLAW_GATEWAY_TOKEN="+secGatewayEnv+"\nTELEGRAM_BOT_TOKEN="+secTelegramEnv+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "compose.yaml")
	for _, data := range []string{
		strings.Replace(clean, `"127.0.0.1:18789:18789"`, `"${OPENCLAW_GATEWAY_TOKEN}:18789"`, 1),
		strings.Replace(clean, `"127.0.0.1:18789:18789"`, `"127.0.0.1:${OPENCLAW_GATEWAY_TOKEN}:18789"`, 1),
		strings.Replace(clean, "mem_limit: 2g", "mem_limit: ${TELEGRAM_BOT_TOKEN}", 1),
		strings.Replace(clean, "    init: true\n", "    init: true\n    dns: [\"${TELEGRAM_BOT_TOKEN}\"]\n    cap_add: [\"${OPENCLAW_GATEWAY_TOKEN}\"]\n", 1),
	} {
		fs := CheckCompose(name, []byte(data), nil) // nil: the process environment and the .env beside the file
		if len(fs) == 0 {
			t.Errorf("no findings for:\n%s", data)
		}
		var l leakScan
		l.add("check compose", strings.Join(FormatComposeFindings(name, fs), "\n"))
		l.check(t)
	}
}
