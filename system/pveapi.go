package system

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The Proxmox VE API client for Step 3's optional API path. It talks to
// https://<node>:8006/api2/json with an API token (header "Authorization: PVEAPIToken=USER@REALM!TOKENID=SECRET";
// no CSRF token is needed with tokens). Every connection goes through Host.Dial, so --dry-run contacts no
// hypervisor; and every write (POST, PUT, DELETE) is refused and recorded as "would call" in dry-run mode,
// also towards loopback. TLS uses the system trust store only: install the node's CA
// (/etc/pve/pve-root-ca.pem on the node) into the VM's store, or point SSL_CERT_FILE at it.

// pveTokenRE is USER@REALM!TOKENID=SECRET (pveum.adoc; the server splits at the first '=').
var pveTokenRE = regexp.MustCompile(`^[^\s@!=]+@[A-Za-z][A-Za-z0-9.\-_]*![A-Za-z][A-Za-z0-9.\-_]*=[^\s]{4,}$`)

// ReadPVEToken reads an API token from path (one line: USER@REALM!TOKENID=SECRET). The secret, and the whole
// token, are registered with AddSecret before anything else happens, and no error message quotes the file's
// content. A file that others can read is refused: the token can switch this VM's firewall off.
func (h *Host) ReadPVEToken(path string) (string, error) {
	st, err := h.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("the Proxmox API token file %s does not exist; create it (mode 0600) with one line USER@REALM!TOKENID=SECRET", path)
	}
	if err != nil {
		return "", fmt.Errorf("reading the Proxmox API token file %s: %w", path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("the Proxmox API token file %s has mode %04o; make it readable by root only (chmod 600 %s)", path, st.Mode().Perm(), path)
	}
	data, err := h.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the Proxmox API token file %s: %w", path, err)
	}
	tok := strings.TrimSpace(string(data))
	if _, secret, ok := strings.Cut(tok, "="); ok {
		h.AddSecret(secret)
	}
	h.AddSecret(tok)
	tok = strings.TrimPrefix(tok, "PVEAPIToken=")
	if !pveTokenRE.MatchString(tok) {
		return "", fmt.Errorf("the Proxmox API token file %s does not hold one line USER@REALM!TOKENID=SECRET (like fwtool@pve!fw=<uuid>)", path)
	}
	return tok, nil
}

// PVEClient calls the Proxmox VE API with a token.
type PVEClient struct {
	h     *Host
	base  string // https://host:8006/api2/json
	token string
	hc    *http.Client
}

// PVEOptions tune the client; the zero value is right for a real run.
type PVEOptions struct {
	TLS     *tls.Config   // nil: the system trust store (tests pass their server's pool)
	Timeout time.Duration // per request; zero means 20 s
}

// NewPVEClient builds a client for apiURL ("https://pve.example:8006", with or without /api2/json).
func (h *Host) NewPVEClient(apiURL, token string, o PVEOptions) (*PVEClient, error) {
	u, err := url.Parse(strings.TrimRight(apiURL, "/"))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%q is not an https URL of a Proxmox node, like https://pve.example:8006", apiURL)
	}
	if !strings.HasSuffix(u.Path, "/api2/json") {
		u.Path += "/api2/json"
	}
	if o.Timeout == 0 {
		o.Timeout = 20 * time.Second
	}
	h.AddSecret(token)
	tr := &http.Transport{
		Proxy: nil, // never through a proxy: the token goes to the node and nowhere else
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return h.Dial(ctx, network, addr, o.Timeout)
		},
		TLSClientConfig:     o.TLS,
		TLSHandshakeTimeout: o.Timeout,
		ForceAttemptHTTP2:   false,
	}
	return &PVEClient{h: h, base: u.String(), token: token, hc: &http.Client{Transport: tr, Timeout: o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, nil
}

// Do calls method on path (relative to /api2/json) with form values and decodes the response's "data"
// into out (when out is not nil). Writes are refused and recorded in dry-run mode.
func (c *PVEClient) Do(ctx context.Context, method, path string, form url.Values, out any) error {
	write := method != http.MethodGet
	if write && c.h.DryRun {
		c.h.record("would call: %s %s %s", method, path, describeForm(form))
		return nil
	}
	var body io.Reader
	target := c.base + path
	if form != nil {
		if write {
			body = strings.NewReader(form.Encode())
		} else {
			target += "?" + form.Encode()
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "PVEAPIToken="+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if write {
			c.h.record("api: %s %s failed: %s", method, path, firstLine(err.Error()))
		}
		return fmt.Errorf("%s %s: %w", method, path, err) // the token travels in a header, never in the URL
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if write {
		c.h.record("api: %s %s %s -> HTTP %d", method, path, describeForm(form), resp.StatusCode)
	}
	if resp.StatusCode/100 != 2 {
		return &PVEError{Method: method, Path: path, Status: resp.StatusCode, Message: c.h.Redact(pveMessage(resp, raw))}
	}
	if out == nil {
		return nil
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("%s %s: the answer is not the API's JSON: %w", method, path, err)
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("%s %s: unexpected data in the answer: %w", method, path, err)
	}
	return nil
}

// PVEError is an API call that the node answered with an error status.
type PVEError struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *PVEError) Error() string {
	hint := ""
	switch e.Status {
	case http.StatusUnauthorized:
		hint = " (the token is wrong, expired or its user is disabled)"
	case http.StatusForbidden:
		hint = " (the token lacks the privilege for this call)"
	}
	return fmt.Sprintf("%s %s: HTTP %d%s: %s", e.Method, e.Path, e.Status, hint, e.Message)
}

// pveMessage is the reason in an error answer: the status line's text, plus per-parameter errors.
func pveMessage(resp *http.Response, raw []byte) string {
	msg := strings.TrimSpace(strings.TrimPrefix(resp.Status, strconv.Itoa(resp.StatusCode)))
	var env struct {
		Errors  map[string]string `json:"errors"`
		Message string            `json:"message"`
	}
	if json.Unmarshal(raw, &env) == nil {
		if env.Message != "" {
			msg = strings.TrimSpace(env.Message)
		}
		for _, k := range SortedKeys(env.Errors) {
			msg += fmt.Sprintf("; %s: %s", k, strings.TrimSpace(env.Errors[k]))
		}
	}
	if msg == "" {
		msg = strings.TrimSpace(string(raw))
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
	}
	return msg
}

// describeForm names the parameters of a write for the journal; values stay out (comments can be long).
func describeForm(form url.Values) string {
	if len(form) == 0 {
		return ""
	}
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return "(" + strings.Join(keys, ",") + ")"
}

// PVERule is one rule as the firewall API returns and takes it.
type PVERule struct {
	Pos      int            `json:"pos"`
	Type     string         `json:"type"` // in, out, group
	Action   string         `json:"action"`
	Macro    string         `json:"macro,omitempty"`
	Iface    string         `json:"iface,omitempty"`
	Source   string         `json:"source,omitempty"`
	Dest     string         `json:"dest,omitempty"`
	Proto    string         `json:"proto,omitempty"`
	DPort    string         `json:"dport,omitempty"`
	SPort    string         `json:"sport,omitempty"`
	Log      string         `json:"log,omitempty"`
	ICMPType string         `json:"icmp-type,omitempty"`
	Comment  string         `json:"comment,omitempty"`
	Enable   int            `json:"enable"`
	Digest   string         `json:"digest,omitempty"`
	Errors   map[string]any `json:"errors,omitempty"` // set on rules pve-firewall keeps but does not compile
}

// Form is the rule as POST parameters.
func (r PVERule) Form() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"type": r.Type, "action": r.Action, "macro": r.Macro, "iface": r.Iface,
		"source": r.Source, "dest": r.Dest, "proto": r.Proto, "dport": r.DPort, "sport": r.SPort, "log": r.Log,
		"icmp-type": r.ICMPType, "comment": r.Comment} {
		if s != "" {
			v.Set(k, s)
		}
	}
	v.Set("enable", strconv.Itoa(r.Enable))
	return v
}

func vmPath(node string, vmid int) string {
	return "/nodes/" + url.PathEscape(node) + "/qemu/" + strconv.Itoa(vmid)
}

// VMRules lists the VM's firewall rules in evaluation order.
func (c *PVEClient) VMRules(ctx context.Context, node string, vmid int) ([]PVERule, error) {
	var rs []PVERule
	err := c.Do(ctx, http.MethodGet, vmPath(node, vmid)+"/firewall/rules", nil, &rs)
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Pos < rs[j].Pos })
	return rs, err
}

// AddVMRule POSTs one rule. The API inserts it at position 0 (it ignores pos), and creates it disabled
// unless enable=1 is sent.
func (c *PVEClient) AddVMRule(ctx context.Context, node string, vmid int, r PVERule) error {
	return c.Do(ctx, http.MethodPost, vmPath(node, vmid)+"/firewall/rules", r.Form(), nil)
}

// DeleteVMRule deletes the rule at pos; digest (from VMRules) makes the call fail if the list changed.
func (c *PVEClient) DeleteVMRule(ctx context.Context, node string, vmid, pos int, digest string) error {
	var form url.Values
	if digest != "" {
		form = url.Values{"digest": {digest}}
	}
	p := vmPath(node, vmid) + "/firewall/rules/" + strconv.Itoa(pos)
	if form != nil {
		p += "?" + form.Encode()
	}
	return c.Do(ctx, http.MethodDelete, p, nil, nil)
}

// ReplaceVMRules makes the VM's rule list exactly rules, in order, each enabled as rules says. The new
// rules are POSTed first, in reverse (each POST inserts at the top), so the new policy is in force above
// the old rules before any old rule is removed; then the old rules, now below them, are deleted from the
// bottom up. At no point is the list shorter than the new policy.
func (c *PVEClient) ReplaceVMRules(ctx context.Context, node string, vmid int, rules []PVERule) error {
	old, err := c.VMRules(ctx, node, vmid)
	if err != nil && !(c.h.DryRun && errors.Is(err, ErrDryRun)) {
		return err
	}
	for i := len(rules) - 1; i >= 0; i-- {
		if err := c.AddVMRule(ctx, node, vmid, rules[i]); err != nil {
			return fmt.Errorf("adding rule %d of %d: %w", i+1, len(rules), err)
		}
	}
	if c.h.DryRun {
		for i := len(old) - 1; i >= 0; i-- {
			c.h.record("would call: DELETE %s/firewall/rules/%d (an old rule)", vmPath(node, vmid), len(rules)+i)
		}
		return nil
	}
	for i := len(old) - 1; i >= 0; i-- {
		cur, err := c.VMRules(ctx, node, vmid)
		if err != nil {
			return err
		}
		pos := len(rules) + i
		if pos >= len(cur) {
			return fmt.Errorf("the rule list changed while it was being replaced (%d rules, expected at least %d); run the step again", len(cur), pos+1)
		}
		if err := c.DeleteVMRule(ctx, node, vmid, pos, cur[pos].Digest); err != nil {
			return fmt.Errorf("removing old rule %d: %w", i, err)
		}
	}
	return nil
}

// PVEOptionsMap is a firewall options or config object with every value as a string.
type PVEOptionsMap map[string]string

// UnmarshalJSON keeps numbers and strings alike as text.
func (m *PVEOptionsMap) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*m = PVEOptionsMap{}
	for k, v := range raw {
		var s string
		if json.Unmarshal(v, &s) == nil {
			(*m)[k] = s
			continue
		}
		(*m)[k] = strings.TrimSpace(string(v))
	}
	return nil
}

// VMFirewallOptions reads the VM's firewall [OPTIONS] (unset keys are absent).
func (c *PVEClient) VMFirewallOptions(ctx context.Context, node string, vmid int) (PVEOptionsMap, error) {
	var m PVEOptionsMap
	return m, c.Do(ctx, http.MethodGet, vmPath(node, vmid)+"/firewall/options", nil, &m)
}

// SetVMFirewallOptions sets VM firewall options (enable, policy_in, policy_out, dhcp, …).
func (c *PVEClient) SetVMFirewallOptions(ctx context.Context, node string, vmid int, v url.Values) error {
	return c.Do(ctx, http.MethodPut, vmPath(node, vmid)+"/firewall/options", v, nil)
}

// ClusterFirewallOptions reads the datacenter firewall options.
func (c *PVEClient) ClusterFirewallOptions(ctx context.Context) (PVEOptionsMap, error) {
	var m PVEOptionsMap
	return m, c.Do(ctx, http.MethodGet, "/cluster/firewall/options", nil, &m)
}

// SetClusterFirewallOptions changes only the given datacenter options (needs Sys.Modify on /).
func (c *PVEClient) SetClusterFirewallOptions(ctx context.Context, v url.Values) error {
	return c.Do(ctx, http.MethodPut, "/cluster/firewall/options", v, nil)
}

// VMConfig reads the VM's configuration (net0 and the rest, plus digest).
func (c *PVEClient) VMConfig(ctx context.Context, node string, vmid int) (PVEOptionsMap, error) {
	var m PVEOptionsMap
	return m, c.Do(ctx, http.MethodGet, vmPath(node, vmid)+"/config", nil, &m)
}

// SetVMConfig changes the given VM configuration keys.
func (c *PVEClient) SetVMConfig(ctx context.Context, node string, vmid int, v url.Values) error {
	return c.Do(ctx, http.MethodPut, vmPath(node, vmid)+"/config", v, nil)
}

// NetFirewall reports whether a netN property string ("virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1")
// has the firewall flag on.
func NetFirewall(net string) bool {
	for _, kv := range strings.Split(net, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && k == "firewall" {
			return v == "1"
		}
	}
	return false
}

// WithNetFirewall returns the netN string with firewall=1 and every other part (model and MAC, bridge,
// tag, …) unchanged: qm and the API give a NIC set without its MAC a new random one.
func WithNetFirewall(net string) string {
	parts := strings.Split(net, ",")
	for i, kv := range parts {
		if k, _, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && k == "firewall" {
			parts[i] = "firewall=1"
			return strings.Join(parts, ",")
		}
	}
	return net + ",firewall=1"
}

// FakePVE is an in-memory Proxmox VE API for tests (an http.Handler to mount in httptest.NewTLSServer). It
// implements what Step 3 relies on, as the real API does it: POST …/firewall/rules inserts at position 0
// and creates the rule disabled unless enable=1; rules carry pos and a digest of the list; DELETE …/rules/N
// with a stale digest fails; options GET/PUT (only given keys change); config GET/PUT with netN strings.
type FakePVE struct {
	Token string // the full USER@REALM!TOKENID=SECRET accepted
	Node  string
	VMID  int

	mu       sync.Mutex
	Rules    []PVERule
	VMOpts   map[string]string
	Cluster  map[string]string
	Config   map[string]string
	Calls    []string // "METHOD path" of every request, in order
	ForbidDC bool     // refuse PUT /cluster/firewall/options with 403 (a token without Sys.Modify)
}

// NewFakePVE returns a fake node with one VM whose firewall is off and whose net0 has no firewall flag.
func NewFakePVE(token, node string, vmid int) *FakePVE {
	return &FakePVE{Token: token, Node: node, VMID: vmid, VMOpts: map[string]string{}, Cluster: map[string]string{},
		Config: map[string]string{"net0": "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0", "name": "openclaw", "digest": "c0"}}
}

func (f *FakePVE) digest() string {
	b, _ := json.Marshal(f.Rules)
	var h uint32 = 2166136261
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	return strconv.FormatUint(uint64(h), 16)
}

func (f *FakePVE) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	path := strings.TrimPrefix(r.URL.Path, "/api2/json")
	f.Calls = append(f.Calls, r.Method+" "+path)
	reply := func(code int, data any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{"data": data})
	}
	fail := func(code int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{"data": nil, "message": msg})
	}
	if r.Header.Get("Authorization") != "PVEAPIToken="+f.Token {
		fail(http.StatusUnauthorized, "authentication failure")
		return
	}
	_ = r.ParseForm()
	vm := vmPath(f.Node, f.VMID)
	switch {
	case path == vm+"/firewall/rules" && r.Method == http.MethodGet:
		d := f.digest()
		out := make([]PVERule, len(f.Rules))
		for i, rule := range f.Rules {
			rule.Pos, rule.Digest = i, d
			out[i] = rule
		}
		reply(200, out)
	case path == vm+"/firewall/rules" && r.Method == http.MethodPost:
		if r.PostForm.Get("type") == "" || r.PostForm.Get("action") == "" {
			fail(400, "type and action are required")
			return
		}
		rule := PVERule{Type: r.PostForm.Get("type"), Action: r.PostForm.Get("action"), Macro: r.PostForm.Get("macro"),
			Iface: r.PostForm.Get("iface"), Source: r.PostForm.Get("source"), Dest: r.PostForm.Get("dest"),
			Proto: r.PostForm.Get("proto"), DPort: r.PostForm.Get("dport"), SPort: r.PostForm.Get("sport"),
			Log: r.PostForm.Get("log"), ICMPType: r.PostForm.Get("icmp-type"), Comment: r.PostForm.Get("comment")}
		if e := r.PostForm.Get("enable"); e != "" {
			rule.Enable, _ = strconv.Atoi(e)
		}
		f.Rules = append([]PVERule{rule}, f.Rules...) // Rules.pm: unshift @$rules, $rule
		reply(200, nil)
	case strings.HasPrefix(path, vm+"/firewall/rules/") && r.Method == http.MethodDelete:
		pos, err := strconv.Atoi(strings.TrimPrefix(path, vm+"/firewall/rules/"))
		if err != nil || pos < 0 || pos >= len(f.Rules) {
			fail(400, "no rule at that position")
			return
		}
		if d := r.Form.Get("digest"); d != "" && d != f.digest() {
			fail(500, "detected modified configuration - file changed by other user? Try again.")
			return
		}
		f.Rules = append(f.Rules[:pos], f.Rules[pos+1:]...)
		reply(200, nil)
	case path == vm+"/firewall/options":
		f.options(w, r, f.VMOpts, reply)
	case path == "/cluster/firewall/options":
		if r.Method == http.MethodPut && f.ForbidDC {
			fail(http.StatusForbidden, "Permission check failed (/, Sys.Modify)")
			return
		}
		f.options(w, r, f.Cluster, reply)
	case path == vm+"/config":
		f.options(w, r, f.Config, reply)
		if r.Method == http.MethodPut {
			f.Config["digest"] = "c" + strconv.Itoa(len(f.Calls))
		}
	default:
		fail(http.StatusNotImplemented, "the fake does not implement "+r.Method+" "+path)
	}
}

func (f *FakePVE) options(w http.ResponseWriter, r *http.Request, m map[string]string, reply func(int, any)) {
	switch r.Method {
	case http.MethodGet:
		out := map[string]any{}
		for k, v := range m {
			if n, err := strconv.Atoi(v); err == nil && k != "digest" {
				out[k] = n // the API returns integers for the boolean options
			} else {
				out[k] = v
			}
		}
		reply(200, out)
	case http.MethodPut:
		for k := range r.PostForm {
			if k != "digest" {
				m[k] = r.PostForm.Get(k)
			}
		}
		reply(200, nil)
	default:
		reply(http.StatusMethodNotAllowed, nil)
	}
}

// Snapshot returns copies of the fake's state (for assertions).
func (f *FakePVE) Snapshot() (rules []PVERule, vm, cluster, config map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cp := func(m map[string]string) map[string]string {
		o := map[string]string{}
		for k, v := range m {
			o[k] = v
		}
		return o
	}
	return append([]PVERule(nil), f.Rules...), cp(f.VMOpts), cp(f.Cluster), cp(f.Config)
}
