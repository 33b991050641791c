package system

import (
	"fmt"
	"io/fs"
	"regexp"
	"syscall"

	"github.com/coreos/go-iptables/iptables"
)

// IPTables is the narrow part of go-iptables the steps use; the fake in fake.go implements it for tests.
type IPTables interface {
	List(table, chain string) ([]string, error)
	ListChains(table string) ([]string, error)
	ChainExists(table, chain string) (bool, error)
	Exists(table, chain string, rulespec ...string) (bool, error)
	Insert(table, chain string, pos int, rulespec ...string) error
	Append(table, chain string, rulespec ...string) error
	Delete(table, chain string, rulespec ...string) error
	NewChain(table, chain string) error
	ClearChain(table, chain string) error
}

var _ IPTables = (*iptables.IPTables)(nil)

// IPTables opens the IPv4 iptables handle; in dry-run mode the handle reads but refuses to change anything.
func (h *Host) IPTables() (IPTables, error) {
	var ipt IPTables
	var err error
	if h.IPTablesFactory != nil {
		ipt, err = h.IPTablesFactory()
	} else {
		ipt, err = iptables.NewWithProtocol(iptables.ProtocolIPv4)
	}
	if err != nil {
		return nil, fmt.Errorf("opening iptables: %w", err)
	}
	return &guardedIPT{IPTables: ipt, h: h}, nil
}

// guardedIPT journals every change and turns it into a "would" record in dry-run mode.
type guardedIPT struct {
	IPTables
	h *Host
}

func (g *guardedIPT) change(desc string, fn func() error) error {
	if g.h.DryRun {
		g.h.record("would run: iptables %s", desc)
		return nil
	}
	err := fn()
	g.h.record("run: iptables %s -> %s", desc, errString(err))
	return err
}

func (g *guardedIPT) Insert(table, chain string, pos int, spec ...string) error {
	return g.change(fmt.Sprintf("-t %s -I %s %d %s", table, chain, pos, shellQuote(spec)), func() error {
		return g.IPTables.Insert(table, chain, pos, spec...)
	})
}

func (g *guardedIPT) Append(table, chain string, spec ...string) error {
	return g.change(fmt.Sprintf("-t %s -A %s %s", table, chain, shellQuote(spec)), func() error {
		return g.IPTables.Append(table, chain, spec...)
	})
}

func (g *guardedIPT) Delete(table, chain string, spec ...string) error {
	return g.change(fmt.Sprintf("-t %s -D %s %s", table, chain, shellQuote(spec)), func() error {
		return g.IPTables.Delete(table, chain, spec...)
	})
}

func (g *guardedIPT) NewChain(table, chain string) error {
	return g.change(fmt.Sprintf("-t %s -N %s", table, chain), func() error { return g.IPTables.NewChain(table, chain) })
}

func (g *guardedIPT) ClearChain(table, chain string) error {
	return g.change(fmt.Sprintf("-t %s -F %s", table, chain), func() error { return g.IPTables.ClearChain(table, chain) })
}

// Backend says which kernel interface iptables drives; go-iptables does not tell.
type Backend struct {
	Version string // "1.8.9"
	Mode    string // "nf_tables" or "legacy"
}

var iptVersionRE = regexp.MustCompile(`^iptables v(\d+(?:\.\d+)*)(?:\s+\(([a-z_]+)\))?`)

// ParseIPTablesVersion reads `iptables --version`. Versions before 1.8 print no mode and are always legacy.
func ParseIPTablesVersion(out string) (Backend, error) {
	m := iptVersionRE.FindStringSubmatch(out)
	if m == nil {
		return Backend{}, fmt.Errorf("cannot read the iptables version from %q; expected e.g. \"iptables v1.8.9 (nf_tables)\"", out)
	}
	b := Backend{Version: m[1], Mode: m[2]}
	if b.Mode == "" {
		b.Mode = "legacy"
	}
	if b.Mode != "legacy" && b.Mode != "nf_tables" {
		return Backend{}, fmt.Errorf("unknown iptables backend %q in %q", b.Mode, out)
	}
	return b, nil
}

func ownedBy(st fs.FileInfo, uid, gid int) bool {
	if uid < 0 {
		return true
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && int(sys.Uid) == uid && (gid < 0 || int(sys.Gid) == gid)
}
