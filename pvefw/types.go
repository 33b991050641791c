package pvefw

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Kind is the type of firewall file, which decides its sections, options
// and rule directions.
type Kind int

const (
	// VM is /etc/pve/firewall/<vmid>.fw (a VM or a container).
	VM Kind = iota + 1
	// Cluster is /etc/pve/firewall/cluster.fw.
	Cluster
	// Host is /etc/pve/nodes/<node>/host.fw.
	Host
)

func (k Kind) String() string {
	switch k {
	case VM:
		return "vm"
	case Cluster:
		return "cluster"
	case Host:
		return "host"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

var vmidName = regexp.MustCompile(`^\d+\.fw$`)

// KindOf guesses the kind from a file name: cluster.fw (and names with
// "cluster" in them, such as a cluster.fw fragment) is Cluster, host.fw is
// Host, anything else, <vmid>.fw included, is VM.
func KindOf(name string) Kind {
	base := path.Base(strings.ReplaceAll(name, `\`, "/"))
	switch {
	case vmidName.MatchString(base):
		return VM
	case strings.Contains(strings.ToLower(base), "cluster"):
		return Cluster
	case strings.HasPrefix(strings.ToLower(base), "host.fw"):
		return Host
	}
	return VM
}

// File is a firewall file as pve-firewall reads it: only lines it accepts
// appear here, with the values it stores (keys lowercased, policies
// uppercased, the last of a duplicated rule option).
type File struct {
	Name    string
	Kind    Kind
	Options []Option // in file order; a repeated key appears twice, the last one wins
	Aliases []Alias
	IPSets  []IPSet
	Rules   []Rule
	Groups  []Group // security groups; cluster.fw only
}

// Option returns the value pve-firewall uses for key: the last one set.
func (f *File) Option(key string) (Option, bool) {
	for i := len(f.Options) - 1; i >= 0; i-- {
		if f.Options[i].Key == key {
			return f.Options[i], true
		}
	}
	return Option{}, false
}

// IPSet returns the set called name (names are stored lowercase).
func (f *File) IPSet(name string) (*IPSet, bool) {
	for i := range f.IPSets {
		if f.IPSets[i].Name == name {
			return &f.IPSets[i], true
		}
	}
	return nil, false
}

// Alias returns the alias called name (case-insensitive, as in pve-firewall).
func (f *File) Alias(name string) (*Alias, bool) {
	name = asciiLower(name)
	for i := len(f.Aliases) - 1; i >= 0; i-- {
		if asciiLower(f.Aliases[i].Name) == name {
			return &f.Aliases[i], true
		}
	}
	return nil, false
}

// Group returns the security group called name.
func (f *File) Group(name string) (*Group, bool) {
	for i := range f.Groups {
		if f.Groups[i].Name == name {
			return &f.Groups[i], true
		}
	}
	return nil, false
}

// Option is one "key: value" line of [OPTIONS].
type Option struct {
	Line  int
	Key   string
	Value string
}

// Alias is one "name address" line of [ALIASES].
type Alias struct {
	Line    int
	Name    string
	CIDR    string
	Comment string
}

// IPSet is an [IPSET name] section.
type IPSet struct {
	Line    int
	Name    string // lowercase: pve-firewall lowercases the header's name
	Comment string
	Entries []IPSetEntry
}

// IPSetEntry is one address line of an IP set.
type IPSetEntry struct {
	Line    int
	CIDR    string // an address, a CIDR or an alias name
	NoMatch bool   // written with a leading '!'
	Comment string
	// Invalid says why pve-firewall keeps the entry but leaves it out of the
	// set; empty when the entry is used.
	Invalid string
}

// Group is a [group name] security group of cluster.fw.
type Group struct {
	Line    int
	Name    string // lowercase
	Comment string
	Rules   []Rule
}

// Rule is one rule line. Empty fields are options the line does not set.
type Rule struct {
	Line     int
	Dir      string // IN, OUT, FORWARD or GROUP (uppercased as pve-firewall writes it back)
	Action   string // ACCEPT, DROP or REJECT; for GROUP the security group's name
	Macro    string // "SSH" for SSH(ACCEPT)
	Iface    string // -i
	Source   string
	Dest     string
	Proto    string // -p
	DPort    string
	SPort    string
	Log      string
	ICMPType string
	Enabled  bool // false when written with a leading '|'
	Comment  string
	// Invalid says why pve-firewall keeps the rule but never compiles it;
	// empty when it compiles.
	Invalid string
}

// Severity is how bad a finding is.
type Severity int

const (
	// Warning: pve-firewall accepts the line, but it does not do what it
	// seems to, or it is not in the form both backends read alike.
	Warning Severity = iota + 1
	// Error: pve-firewall skips the line, keeps it without compiling it, or
	// the line makes other lines or the whole firewall ineffective.
	Error
)

func (s Severity) String() string {
	switch s {
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return fmt.Sprintf("Severity(%d)", int(s))
}

// Finding is one problem on one line.
type Finding struct {
	File     string
	Line     int
	Severity Severity
	Message  string
}

// String gives the FILE:LINE: severity: message form editors and CI
// systems turn into annotations.
func (f Finding) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", f.File, f.Line, f.Severity, f.Message)
}

// HasErrors reports whether any finding is an Error.
func HasErrors(fs []Finding) bool {
	for _, f := range fs {
		if f.Severity == Error {
			return true
		}
	}
	return false
}

// Config tells Parse and Check what they cannot learn from the file itself.
// The zero Config guesses the kind from the name and knows no cluster.fw.
type Config struct {
	Kind Kind // zero: KindOf(name)
	// Cluster is the parsed cluster.fw. A VM file may use its aliases, IP
	// sets and security groups; without it those references cannot be
	// checked.
	Cluster *File
}

// Parse reads data as pve-firewall reads the file called name, and returns
// what it keeps together with the findings Check reports.
func Parse(name string, data []byte) (File, []Finding) {
	return Config{}.Parse(name, data)
}

// Check returns the findings for the file called name, at most one per
// line, sorted by line.
func Check(name string, data []byte) []Finding {
	return Config{}.Check(name, data)
}

// Check is the package-level Check with c's kind and cluster.fw.
func (c Config) Check(name string, data []byte) []Finding {
	_, fs := c.Parse(name, data)
	return fs
}

// Parse is the package-level Parse with c's kind and cluster.fw.
func (c Config) Parse(name string, data []byte) (File, []Finding) {
	if c.Kind == 0 {
		c.Kind = KindOf(name)
	}
	p := newParser(c, name, data)
	p.run()
	return p.file, p.result()
}
