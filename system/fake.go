package system

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// FakeRunner answers commands from a table, for unit tests in any package. A command it was not told
// about fails the way a missing tool would, and is remembered so a test can assert nothing unexpected ran.
type FakeRunner struct {
	mu        sync.Mutex
	Responses map[string]FakeResponse // key: the argv joined by single spaces
	Calls     []string
	Unknown   []string
}

// FakeResponse is what one faked command prints and how it exits.
type FakeResponse struct {
	Stdout string
	Exit   int // non-zero gives a *CmdError with this status
	Stderr string
}

// NewFakeRunner builds a FakeRunner from "argv" → stdout pairs that all exit 0.
func NewFakeRunner(outputs map[string]string) *FakeRunner {
	f := &FakeRunner{Responses: map[string]FakeResponse{}}
	for k, v := range outputs {
		f.Responses[k] = FakeResponse{Stdout: v}
	}
	return f
}

// Set adds or replaces one response.
func (f *FakeRunner) Set(argv string, r FakeResponse) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Responses == nil {
		f.Responses = map[string]FakeResponse{}
	}
	f.Responses[argv] = r
}

func (f *FakeRunner) Run(_ context.Context, c Cmd) ([]byte, error) {
	key := strings.Join(c.Argv, " ")
	f.mu.Lock()
	f.Calls = append(f.Calls, key)
	r, ok := f.Responses[key]
	if !ok {
		f.Unknown = append(f.Unknown, key)
	}
	f.mu.Unlock()
	if !ok {
		return nil, &CmdError{Argv: c.Argv, ExitCode: 127, Output: "fake: no such command", Err: fmt.Errorf("exec: %q: not in the fake's table", c.Argv[0])}
	}
	if c.Output != nil {
		for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
			if l != "" {
				c.Output(l)
			}
		}
	}
	if r.Exit != 0 {
		return []byte(r.Stdout), &CmdError{Argv: c.Argv, ExitCode: r.Exit, Output: r.Stderr, Err: fmt.Errorf("exit status %d", r.Exit)}
	}
	return []byte(r.Stdout), nil
}

// CallsSnapshot returns the commands run so far.
func (f *FakeRunner) CallsSnapshot() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.Calls...)
}

// FakeIPTables is an in-memory iptables: tables of chains of rule specs, with built-in chains pre-made.
type FakeIPTables struct {
	mu     sync.Mutex
	Tables map[string]map[string][]string
	order  map[string][]string
}

// NewFakeIPTables returns a fake with the filter and nat tables' built-in chains.
func NewFakeIPTables() *FakeIPTables {
	f := &FakeIPTables{Tables: map[string]map[string][]string{}, order: map[string][]string{}}
	for _, c := range []string{"INPUT", "FORWARD", "OUTPUT"} {
		f.newChain("filter", c)
	}
	for _, c := range []string{"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"} {
		f.newChain("nat", c)
	}
	return f
}

var _ IPTables = (*FakeIPTables)(nil)

func (f *FakeIPTables) newChain(table, chain string) {
	if f.Tables[table] == nil {
		f.Tables[table] = map[string][]string{}
	}
	f.Tables[table][chain] = []string{}
	f.order[table] = append(f.order[table], chain)
}

func (f *FakeIPTables) chain(table, chain string) ([]string, error) {
	r, ok := f.Tables[table][chain]
	if !ok {
		return nil, fmt.Errorf("iptables: No chain/target/match by that name (table %s chain %s)", table, chain)
	}
	return r, nil
}

func builtin(chain string) bool {
	return strings.ToUpper(chain) == chain && !strings.Contains(chain, "-")
}

// List prints the chain the way `iptables -S CHAIN` does.
func (f *FakeIPTables) List(table, chain string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.chain(table, chain)
	if err != nil {
		return nil, err
	}
	head := "-N " + chain
	if builtin(chain) {
		head = "-P " + chain + " ACCEPT"
	}
	out := []string{head}
	for _, s := range r {
		out = append(out, "-A "+chain+" "+s)
	}
	return out, nil
}

func (f *FakeIPTables) ListChains(table string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.order[table]...), nil
}

func (f *FakeIPTables) ChainExists(table, chain string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.Tables[table][chain]
	return ok, nil
}

func (f *FakeIPTables) Exists(table, chain string, spec ...string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.chain(table, chain)
	if err != nil {
		return false, err
	}
	want := strings.Join(spec, " ")
	for _, s := range r {
		if s == want {
			return true, nil
		}
	}
	return false, nil
}

func (f *FakeIPTables) Insert(table, chain string, pos int, spec ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.chain(table, chain)
	if err != nil {
		return err
	}
	if pos < 1 || pos > len(r)+1 {
		return fmt.Errorf("iptables: Index of insertion too big")
	}
	r = append(r[:pos-1], append([]string{strings.Join(spec, " ")}, r[pos-1:]...)...)
	f.Tables[table][chain] = r
	return nil
}

func (f *FakeIPTables) Append(table, chain string, spec ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.chain(table, chain)
	if err != nil {
		return err
	}
	f.Tables[table][chain] = append(r, strings.Join(spec, " "))
	return nil
}

func (f *FakeIPTables) Delete(table, chain string, spec ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.chain(table, chain)
	if err != nil {
		return err
	}
	want := strings.Join(spec, " ")
	for i, s := range r {
		if s == want {
			f.Tables[table][chain] = append(r[:i:i], r[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("iptables: Bad rule (does a matching rule exist in that chain?)")
}

func (f *FakeIPTables) NewChain(table, chain string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.Tables[table][chain]; ok {
		return fmt.Errorf("iptables: Chain already exists")
	}
	f.newChain(table, chain)
	return nil
}

func (f *FakeIPTables) ClearChain(table, chain string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.Tables[table][chain]; !ok {
		f.newChain(table, chain)
		return nil
	}
	f.Tables[table][chain] = []string{}
	return nil
}

// NewFakeHost is a Host over a temp root with a FakeRunner and FakeIPTables, for unit tests of steps and UI.
func NewFakeHost(root, stateDir string, runner *FakeRunner, dryRun bool) *Host {
	ipt := NewFakeIPTables()
	env := map[string]string{}
	return &Host{
		Runner:          runner,
		Root:            root,
		StateDir:        stateDir,
		DryRun:          dryRun,
		IPTablesFactory: func() (IPTables, error) { return ipt, nil },
		Env:             func(k string) string { return env[k] },
	}
}

// SortedKeys is a small helper for deterministic output of maps.
func SortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
