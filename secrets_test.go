package main

// The CLI never prints a secret: plan, apply --dry-run, verify --json, report, every render and check compose
// run with a Proxmox API token in a token file (against a fake Proxmox node, and against one that quotes the
// Authorization header in its errors), a Telegram bot token, a gateway token and an API key in the
// environment and in the .env beside a compose file. stdout, stderr and every file the runs leave in the state
// dir are scanned. Each command runs in a child process (this test binary again) so that SSL_CERT_FILE can make
// the real TLS client trust the fake node, as an operator's CA bundle would. Everything runs with --dry-run or
// with a temp --state-dir on Step 3 only, whose writes go to the fake node: nothing on this machine changes.

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"openclaw-harden/steps"
	"openclaw-harden/system"
)

const (
	cliSecTelegram = "123456:SECRET-BOT-TOKEN-abcdef"
	cliSecGateway  = "SECRET-GATEWAY-TOKEN-0123456789abcdef0123"
	cliSecAPIKey   = "sk-SECRET-ANTHROPIC-KEY-4242"
	cliSecPVE      = "SECRET-PVE-5e1f2a3b-0c4d-4e5f-8a9b"
	cliSecPVEToken = "fwtool@pve!fw=" + cliSecPVE
)

// cliSecrets are scanned for; "SECRET-" catches a part of any of them.
var cliSecrets = []string{cliSecTelegram, cliSecGateway, cliSecAPIKey, cliSecPVE, cliSecPVEToken, "SECRET-"}

const secretsChildEnv = "OPENCLAW_HARDEN_SECRETS_CHILD"

// TestSecretsCLIChild is the child: it runs the CLI with the arguments in its environment and exits with its code.
func TestSecretsCLIChild(t *testing.T) {
	spec := os.Getenv(secretsChildEnv)
	if spec == "" {
		t.Skip("run by TestSecretsNeverPrintedByTheCLI")
	}
	var c struct{ Args []string }
	if err := json.Unmarshal([]byte(spec), &c); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	stdout, err1 := os.Create(os.Getenv(secretsChildEnv + "_STDOUT"))
	stderr, err2 := os.Create(os.Getenv(secretsChildEnv + "_STDERR"))
	if err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, err1, err2)
		os.Exit(3)
	}
	code := run(context.Background(), c.Args, stdout, stderr)
	stdout.Close()
	stderr.Close()
	os.Exit(code)
}

type cliRun struct {
	args           []string
	code           int
	stdout, stderr string
}

// runChild runs the CLI in a child process with extra environment and returns what it printed.
func runChild(t *testing.T, env []string, args ...string) cliRun {
	t.Helper()
	dir := t.TempDir()
	spec, _ := json.Marshal(struct{ Args []string }{args})
	outF, errF := filepath.Join(dir, "stdout"), filepath.Join(dir, "stderr")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSecretsCLIChild$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), env...), secretsChildEnv+"="+string(spec),
		secretsChildEnv+"_STDOUT="+outF, secretsChildEnv+"_STDERR="+errF, "NO_COLOR=1")
	var noise bytes.Buffer
	cmd.Stdout, cmd.Stderr = &noise, &noise
	err := cmd.Run()
	r := cliRun{args: args}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	o, err1 := os.ReadFile(outF)
	e, err2 := os.ReadFile(errF)
	if err1 != nil || err2 != nil || r.code == 3 {
		t.Fatalf("%v: the child did not run the CLI (exit %d): %v %v\n%s", args, r.code, err1, err2, noise.String())
	}
	r.stdout, r.stderr = string(o), string(e)
	return r
}

func scanForSecrets(t *testing.T, where, text string) {
	t.Helper()
	for _, sec := range cliSecrets {
		if i := strings.Index(text, sec); i >= 0 {
			from, to := max(0, i-100), min(len(text), i+len(sec)+40)
			t.Errorf("secret %q in %s: …%s…", sec, where, text[from:to])
		}
	}
}

// pveServer starts h on a TLS server and returns its URL and a CA file holding its certificate.
func pveServer(t *testing.T, h http.Handler) (string, string) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL, ca
}

func TestSecretsNeverPrintedByTheCLI(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "pve-token")
	if err := os.WriteFile(tokenFile, []byte(cliSecPVEToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// An operator's shell with the tokens exported (compose interpolates from the environment).
	env := []string{"TELEGRAM_BOT_TOKEN=" + cliSecTelegram, "OPENCLAW_GATEWAY_TOKEN=" + cliSecGateway, "ANTHROPIC_API_KEY=" + cliSecAPIKey,
		"SSH_CONNECTION=192.168.1.50 50000 192.168.1.10 22", "OPENCLAW_HARDEN_STATE_DIR="}

	fake := system.NewFakePVE(cliSecPVEToken, "pve", 100)
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]any{"data": nil, "message": "authentication failure for " + r.Header.Get("Authorization"),
			"errors": map[string]string{"token": r.Header.Get("Authorization")}})
	})
	var runs []cliRun
	for _, node := range []struct {
		name string
		h    http.Handler
	}{{"fake node", fake}, {"node echoing the token", echo}} {
		url, ca := pveServer(t, node.h)
		ans := filepath.Join(dir, strings.ReplaceAll(node.name, " ", "-")+".yaml")
		answers := fmt.Sprintf("admin_source: 192.168.1.50\nproxmox:\n  vmid: 100\n  node: pve\n  nic: net0\n  api_url: %s\n  token_file: %s\n", url, tokenFile)
		if err := os.WriteFile(ans, []byte(answers), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := steps.ParseAnswers(ans, []byte(answers)); err != nil {
			t.Fatal(err)
		}
		penv := append(env, "SSL_CERT_FILE="+ca)
		dryState := filepath.Join(dir, "dry-state") // never created: every run here is a dry run
		for _, args := range [][]string{
			{"plan"}, {"plan", "--step", "3"}, {"apply", "--yes"}, {"apply", "--yes", "--step", "3"},
			{"verify", "--json"}, {"verify"}, {"report"},
		} {
			r := runChild(t, penv, append([]string{"--dry-run", "--state-dir", dryState, "--answers", ans}, args...)...)
			r.args = append([]string{node.name}, r.args...)
			runs = append(runs, r)
		}
		if _, err := os.Stat(dryState); !os.IsNotExist(err) {
			t.Errorf("a dry run created the state dir: %v", err)
		}
		// Step 3 for real into a temp state dir: its writes go to the fake node and the state dir only.
		state := filepath.Join(dir, strings.ReplaceAll(node.name, " ", "-")+"-state")
		for _, args := range [][]string{{"apply", "--yes", "--step", "3"}, {"verify", "--json", "--step", "3"}, {"plan", "--step", "3"}} {
			r := runChild(t, penv, append([]string{"--state-dir", state, "--answers", ans}, args...)...)
			r.args = append([]string{node.name}, r.args...)
			runs = append(runs, r)
		}
		files := 0
		_ = filepath.WalkDir(state, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				data, _ := os.ReadFile(p)
				scanForSecrets(t, node.name+": state dir file "+strings.TrimPrefix(p, state), string(data))
				files++
			}
			return nil
		})
		if files == 0 {
			t.Errorf("%s: the real Step 3 runs left no state files to scan", node.name)
		}
	}
	// The fake node was reached: the token worked, and it was still never printed.
	if len(fake.Calls) == 0 {
		t.Error("no run reached the fake Proxmox node; the API path was not exercised")
	}

	// render every artifact with the answers.
	for _, art := range artifactNames() {
		runs = append(runs, runChild(t, env, "render", art, "--answers", filepath.Join(dir, "fake-node.yaml")))
	}

	// check compose with the tokens in the .env beside the file, used by the compose file, and once in a place
	// where the loader's error quotes the value it could not use.
	cdir := filepath.Join(dir, "compose")
	if err := os.MkdirAll(cdir, 0o700); err != nil {
		t.Fatal(err)
	}
	dotenv := "OPENCLAW_GATEWAY_TOKEN=" + cliSecGateway + "\nTELEGRAM_BOT_TOKEN=" + cliSecTelegram + "\nANTHROPIC_API_KEY=" + cliSecAPIKey + "\n"
	if err := os.WriteFile(filepath.Join(cdir, ".env"), []byte(dotenv), 0o600); err != nil {
		t.Fatal(err)
	}
	good, err := steps.RenderCompose(steps.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	withEnv := strings.Replace(good, "    init: true\n", "    init: true\n    environment:\n      OPENCLAW_GATEWAY_TOKEN: ${OPENCLAW_GATEWAY_TOKEN}\n      TELEGRAM_BOT_TOKEN: \"${TELEGRAM_BOT_TOKEN}\"\n      ANTHROPIC_API_KEY: ${ANTHROPIC_API_KEY}\n    privileged: true\n", 1)
	if withEnv == good {
		t.Fatal("the compose file has no init: true line to add the environment after")
	}
	for name, data := range map[string]string{
		"env.yaml":      withEnv,
		"bad-port.yaml": strings.Replace(good, `"127.0.0.1:18789:18789"`, `"${OPENCLAW_GATEWAY_TOKEN}:18789"`, 1),
		"bad-mem.yaml":  strings.Replace(good, "mem_limit: 2g", "mem_limit: ${TELEGRAM_BOT_TOKEN}", 1),
		"bad-pids.yaml": strings.Replace(good, "    init: true\n", "    init: true\n    pids_limit: ${ANTHROPIC_API_KEY}\n", 1),
	} {
		f := filepath.Join(cdir, name)
		if err := os.WriteFile(f, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, e := range [][]string{env, nil} { // with the tokens exported, and only in .env
			runs = append(runs, runChild(t, e, "check", "compose", f))
		}
	}

	for _, r := range runs {
		where := strings.Join(r.args, " ")
		scanForSecrets(t, where+": stdout", r.stdout)
		scanForSecrets(t, where+": stderr", r.stderr)
		if r.code == 2 {
			t.Errorf("%s: usage error, so the command did not run: %s", where, r.stderr)
		}
		if strings.Contains(where, "verify --json") && !json.Valid([]byte(r.stdout)) {
			t.Errorf("%s: stdout is not JSON:\n%s", where, r.stdout)
		}
	}
	// The runs did see the secrets' neighbourhood: Step 3 read the token file and used the API.
	var all strings.Builder
	for _, r := range runs {
		all.WriteString(r.stdout + r.stderr)
	}
	for _, want := range []string{"authentication failure", "step3.api", "does not load as a compose file"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("no run printed %q: the test does not reach the code it is meant to check", want)
		}
	}
}
