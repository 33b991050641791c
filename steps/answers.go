package steps

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Answers are the operator's choices. Every field has the profile's default except admin_source, which the
// wizard proposes from SSH_CONNECTION; an empty file is therefore valid apart from that one field.
type Answers struct {
	LANCIDR            string   `yaml:"lan_cidr" json:"lan_cidr"`
	AdminSource        string   `yaml:"admin_source" json:"admin_source"`
	AdminUser          string   `yaml:"admin_user,omitempty" json:"admin_user,omitempty"`
	ExtraPrivateRanges []string `yaml:"extra_private_ranges,omitempty" json:"extra_private_ranges,omitempty"`
	DockerSubnet       string   `yaml:"docker_subnet" json:"docker_subnet"`
	Resolvers          []string `yaml:"resolvers" json:"resolvers"`
	NTP                []string `yaml:"ntp,omitempty" json:"ntp,omitempty"` // NTP servers; empty allows 123/udp to any public address
	GatewayPort        int      `yaml:"gateway_port" json:"gateway_port"`
	Image              string   `yaml:"image" json:"image"`
	AllowHTTP          bool     `yaml:"allow_http,omitempty" json:"allow_http,omitempty"` // keep 80/tcp out for apt instead of switching to https
	Proxmox            Proxmox  `yaml:"proxmox" json:"proxmox"`
	Probes             Probes   `yaml:"probes" json:"probes"`
}

// Proxmox says where the VM lives on the hypervisor, for Step 3.
type Proxmox struct {
	VMID      int    `yaml:"vmid" json:"vmid"`
	Node      string `yaml:"node" json:"node"`
	NIC       string `yaml:"nic" json:"nic"`
	APIURL    string `yaml:"api_url,omitempty" json:"api_url,omitempty"`
	TokenFile string `yaml:"token_file,omitempty" json:"token_file,omitempty"` // the token itself is never in the answers
}

// Probes extend the profile's verification matrix (Step 8).
type Probes struct {
	MustFail []string `yaml:"must_fail,omitempty" json:"must_fail,omitempty"` // URLs or host:port that must not answer
	MustWork []string `yaml:"must_work,omitempty" json:"must_work,omitempty"`
	LANHost  *LANHost `yaml:"lan_host,omitempty" json:"lan_host,omitempty"`
	// Container adds probes sent from inside the gateway container, each with its kind and expectation.
	Container []ContainerProbe `yaml:"container,omitempty" json:"container,omitempty"`
}

// LANHost is an optional other LAN machine the matrix probes from over SSH.
type LANHost struct {
	Address string `yaml:"address" json:"address"`
	User    string `yaml:"user" json:"user"`
	KeyFile string `yaml:"key_file" json:"key_file"`
}

// Defaults returns the profile's values for every field that has one.
func Defaults() Answers {
	return Answers{
		LANCIDR:      "192.168.1.0/24",
		DockerSubnet: "172.20.0.0/24",
		Resolvers:    []string{"1.1.1.1", "8.8.8.8"},
		GatewayPort:  18789,
		Image:        "ghcr.io/openclaw/openclaw:latest",
		Proxmox:      Proxmox{VMID: 100, Node: "pve", NIC: "net0"},
	}
}

// PrivateRanges are dropped by every layer (profile Step 3 and 4, field notes).
var PrivateRanges = []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16"}

// fieldError names the field and what would be accepted, in one sentence.
type fieldError struct {
	file, field, msg string
	line             int
	loc              string // the key path to find the line by, when it is not field ("probes.container.1.kind")
}

func (e *fieldError) Error() string {
	where := e.file
	if e.line > 0 {
		where += ":" + strconv.Itoa(e.line)
	}
	if e.field == "" {
		return hideSecretLooking(fmt.Sprintf("%s: %s", where, e.msg))
	}
	return hideSecretLooking(fmt.Sprintf("%s: %s: %s", where, e.field, e.msg))
}

var (
	quotedRE = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	// A Telegram bot token (digits:35 characters), a Proxmox API token (USER@REALM!ID=UUID, or its header
	// form), a UUID (the Proxmox secret alone), a long hex string (the gateway token), or any long run of
	// letters and digits with no separator an address, path or image reference would have.
	secretLookingRE = regexp.MustCompile(`^(\d{5,}:[A-Za-z0-9_-]{30,}|.*PVEAPIToken.*|[^@\s]+@[^!\s]+![^=\s]+=.+|` +
		`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32,}|[A-Za-z0-9+_=-]{24,})$`)
	letterRE, digitRE = regexp.MustCompile(`[A-Za-z]`), regexp.MustCompile(`[0-9]`)
)

// hideSecretLooking replaces every quoted value in an answers error that looks like a token: a secret
// pasted into the wrong field must not be echoed to the terminal, a log or a ticket.
func hideSecretLooking(msg string) string {
	return quotedRE.ReplaceAllStringFunc(msg, func(q string) string {
		v, err := strconv.Unquote(q)
		if err != nil {
			v = q[1 : len(q)-1]
		}
		v = strings.TrimSpace(v)
		if secretLookingRE.MatchString(v) && letterRE.MatchString(v) && digitRE.MatchString(v) {
			return fmt.Sprintf("the value given (%d characters, not shown: it looks like a token)", len(v))
		}
		return q
	})
}

var (
	yamlLineRE    = regexp.MustCompile(`line (\d+): (.*)`)
	yamlUnknownRE = regexp.MustCompile(`field (\S+) not found in type`)
	yamlTypeRE    = regexp.MustCompile("cannot unmarshal !!(\\w+) `([^`]*)` into (\\S+)")
	yamlShapeRE   = regexp.MustCompile(`cannot unmarshal !!(map|seq) into (\S+)`)
)

// KnownKeys lists the accepted top-level keys, for error messages.
const KnownKeys = "lan_cidr, admin_source, admin_user, extra_private_ranges, docker_subnet, resolvers, ntp, gateway_port, image, allow_http, proxmox, probes"

// ParseAnswers reads an answers file over the defaults and validates it. name is used in messages.
func ParseAnswers(name string, data []byte) (Answers, error) {
	a := Defaults()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return a, translateYAMLError(name, err, nil)
	}
	if len(bytes.TrimSpace(data)) > 0 {
		if root.Kind == yaml.DocumentNode && len(root.Content) == 1 && root.Content[0].Kind != yaml.MappingNode &&
			!(root.Content[0].Kind == yaml.ScalarNode && root.Content[0].Tag == "!!null") {
			return a, &fieldError{file: name, line: root.Content[0].Line, msg: "the file must be a mapping of keys to values (key: value), one per line"}
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&a); err != nil && !errors.Is(err, io.EOF) {
			return a, translateYAMLError(name, err, &root)
		}
	}
	err := a.Validate(name)
	var fe *fieldError
	if errors.As(err, &fe) && fe.line == 0 && fe.field != "" {
		loc := fe.loc
		if loc == "" {
			loc = fe.field
		}
		fe.line = lineOf(&root, loc)
	}
	return a, err
}

func translateYAMLError(name string, err error, root *yaml.Node) error {
	var te *yaml.TypeError
	msg := err.Error()
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		return &fieldError{file: name, msg: "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
	}
	line, _ := strconv.Atoi(m[1])
	detail := m[2]
	field := ""
	if root != nil {
		field = keyAtLine(root, line, "")
	}
	if u := yamlUnknownRE.FindStringSubmatch(detail); u != nil {
		return &fieldError{file: name, line: line, msg: fmt.Sprintf("unknown key %q; accepted keys are %s", u[1], keysFor(field))}
	}
	if t := yamlShapeRE.FindStringSubmatch(detail); t != nil {
		shape, kind := "a mapping (key: value)", yaml.MappingNode
		if t[1] == "seq" {
			shape, kind = "a list", yaml.SequenceNode
		}
		if root != nil {
			if f := keyOfValueAt(root, line, kind); f != "" {
				field = f
			}
		}
		return &fieldError{file: name, line: line, field: field, msg: fmt.Sprintf("is %s, but it must be %s", shape, describeGoType(t[2]))}
	}
	if t := yamlTypeRE.FindStringSubmatch(detail); t != nil {
		value := t[2]
		if full, ok := scalarAtLine(root, line, strings.TrimSuffix(value, "...")); ok {
			value = full // the parser cuts long values short: judge (and hide) the whole one
		}
		return &fieldError{file: name, line: line, field: field, msg: fmt.Sprintf("%q is not %s", value, describeGoType(t[3]))}
	}
	return &fieldError{file: name, line: line, field: field, msg: "not valid YAML: " + detail}
}

func keysFor(field string) string {
	switch {
	case strings.HasPrefix(field, "proxmox."):
		return "vmid, node, nic, api_url, token_file (under proxmox)"
	case strings.HasPrefix(field, "probes.lan_host."):
		return "address, user, key_file (under probes.lan_host)"
	case strings.HasPrefix(field, "probes.container."):
		return "target, kind, expect, name (in each entry of probes.container)"
	case strings.HasPrefix(field, "probes."):
		return "must_fail, must_work, lan_host, container (under probes)"
	}
	return KnownKeys
}

func describeGoType(t string) string {
	switch {
	case strings.HasPrefix(t, "int"):
		return "a whole number"
	case t == "bool":
		return "true or false"
	case t == "string":
		return "a single value (text)"
	case strings.HasPrefix(t, "[]"):
		return "a list (write it as [a, b] or one \"- item\" per line)"
	}
	return "of the expected kind (" + t + ")"
}

// walkYAML calls pair for every key/value of every mapping below n with the key's dotted path, and scalar
// for every scalar that is not a mapping's key or value (a list item) with its parent's path.
func walkYAML(n *yaml.Node, prefix string, pair func(path string, k, v *yaml.Node), scalar func(path string, n *yaml.Node)) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			walkYAML(c, prefix, pair, scalar)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := k.Value
			if prefix != "" {
				path = prefix + "." + k.Value
			}
			pair(path, k, v)
			walkYAML(v, path, pair, scalar)
		}
	case yaml.ScalarNode:
		scalar(prefix, n)
	}
}

// keyOfValueAt finds the deepest key path whose value is a node of kind starting on line (a block mapping
// starts on its first key's line, so its parent's value starts there too).
func keyOfValueAt(n *yaml.Node, line int, kind yaml.Kind) string {
	best := ""
	walkYAML(n, "", func(path string, _, v *yaml.Node) {
		if v.Kind == kind && v.Line == line {
			best = path
		}
	}, func(string, *yaml.Node) {})
	return best
}

// scalarAtLine finds the scalar value on line that starts with prefix.
func scalarAtLine(n *yaml.Node, line int, prefix string) (string, bool) {
	if n == nil {
		return "", false
	}
	val, found := "", false
	try := func(s *yaml.Node) {
		if !found && s.Kind == yaml.ScalarNode && s.Line == line && strings.HasPrefix(s.Value, prefix) {
			val, found = s.Value, true
		}
	}
	walkYAML(n, "", func(_ string, _, v *yaml.Node) { try(v) }, func(_ string, s *yaml.Node) { try(s) })
	return val, found
}

// keyAtLine finds the dotted key path whose key or value sits on line, so type errors can name the field.
func keyAtLine(n *yaml.Node, line int, prefix string) string {
	best := ""
	walkYAML(n, prefix, func(path string, k, v *yaml.Node) {
		if k.Line == line || (v.Kind == yaml.ScalarNode && v.Line == line) {
			best = path
		}
	}, func(path string, s *yaml.Node) {
		if s.Line == line && best == "" {
			best = path
		}
	})
	return best
}

var (
	userRE  = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	nicRE   = regexp.MustCompile(`^net[0-9]{1,2}$`)
	nodeRE  = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)
	imageRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._/:@-]*$`)
)

func parsePrefix(s string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, false
	}
	return p, true
}

// parseSource accepts an address (as a /32) or a network.
func parseSource(s string) (netip.Prefix, bool) {
	if a, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil && a.Is4() {
		return netip.PrefixFrom(a, 32), true
	}
	return parsePrefix(s)
}

func overlaps(a, b netip.Prefix) bool { return a.Masked().Overlaps(b.Masked()) }

// Validate checks every field and the relations between them; the first problem is returned as one sentence.
func (a Answers) Validate(name string) error {
	bad := func(field, format string, args ...any) error {
		return &fieldError{file: name, field: field, msg: fmt.Sprintf(format, args...)}
	}
	lan, ok := parsePrefix(a.LANCIDR)
	if !ok {
		return bad("lan_cidr", "%q is not an IPv4 network; write it like 192.168.1.0/24", a.LANCIDR)
	}
	if lan.Bits() < 8 || lan.Bits() > 30 {
		return bad("lan_cidr", "%q has a /%d prefix; a LAN is between /8 and /30", a.LANCIDR, lan.Bits())
	}
	if lan.Masked() != lan {
		return bad("lan_cidr", "%q has host bits set; the network is %s", a.LANCIDR, lan.Masked())
	}
	if a.AdminSource != "" {
		src, ok := parseSource(a.AdminSource)
		if !ok {
			return bad("admin_source", "%q is not an IPv4 address or network; write the admin machine's address, like 192.168.1.50 or 192.168.1.48/29", a.AdminSource)
		}
		if src.Bits() < 16 {
			return bad("admin_source", "%q allows SSH from %s; give the admin machine's address or a network no wider than /16", a.AdminSource, describeWidth(src))
		}
	}
	if a.AdminUser != "" && (!userRE.MatchString(a.AdminUser) || a.AdminUser == "root") {
		return bad("admin_user", "%q is not a usable admin login; give a non-root user name like \"admin\"", a.AdminUser)
	}
	var extra []netip.Prefix
	for _, r := range a.ExtraPrivateRanges {
		p, ok := parsePrefix(r)
		if !ok {
			return bad("extra_private_ranges", "%q is not an IPv4 network; write each like 10.20.0.0/16", r)
		}
		if p.Bits() == 0 {
			return bad("extra_private_ranges", "%q would block all traffic; list only the networks to keep the agent away from", r)
		}
		extra = append(extra, p)
	}
	dock, ok := parsePrefix(a.DockerSubnet)
	if !ok {
		return bad("docker_subnet", "%q is not an IPv4 network; write it like 172.20.0.0/24", a.DockerSubnet)
	}
	if dock.Bits() < 16 || dock.Bits() > 29 {
		return bad("docker_subnet", "%q has a /%d prefix; use a network between /16 and /29, like 172.20.0.0/24", a.DockerSubnet, dock.Bits())
	}
	if dock.Masked() != dock {
		return bad("docker_subnet", "%q has host bits set; the network is %s", a.DockerSubnet, dock.Masked())
	}
	if !isPrivate(dock.Addr()) {
		return bad("docker_subnet", "%q is not a private range; use one inside 172.16.0.0/12, like 172.20.0.0/24", a.DockerSubnet)
	}
	if overlaps(dock, lan) {
		return bad("docker_subnet", "%s overlaps lan_cidr %s; the containers' network must be separate from the LAN, like 172.20.0.0/24", dock, lan)
	}
	for i, p := range extra {
		if overlaps(dock, p) {
			return bad("docker_subnet", "%s overlaps extra_private_ranges entry %s, which would block the containers' own network", dock, a.ExtraPrivateRanges[i])
		}
	}
	if a.AdminSource != "" {
		src, _ := parseSource(a.AdminSource)
		if overlaps(src, dock) {
			return bad("admin_source", "%s is inside docker_subnet %s; the admin machine must be outside the containers' network", a.AdminSource, dock)
		}
	}
	if len(a.Resolvers) == 0 {
		return bad("resolvers", "at least one DNS resolver is needed, like [1.1.1.1, 8.8.8.8]")
	}
	for _, r := range a.Resolvers {
		ip, err := netip.ParseAddr(strings.TrimSpace(r))
		if err != nil || !ip.Is4() {
			return bad("resolvers", "%q is not an IPv4 address; list resolvers like [1.1.1.1, 8.8.8.8]", r)
		}
		if lan.Contains(ip) || isPrivate(ip) || containsAny(extra, ip) || dock.Contains(ip) {
			return bad("resolvers", "%s is in a private range that every layer blocks, so DNS would stop working; use a public resolver like 1.1.1.1", r)
		}
	}
	for _, r := range a.NTP {
		ip, err := netip.ParseAddr(strings.TrimSpace(r))
		if err != nil || !ip.Is4() {
			return bad("ntp", "%q is not an IPv4 address; list NTP servers by address, or leave ntp empty to allow 123/udp to any public address", r)
		}
		if isPrivate(ip) || lan.Contains(ip) || containsAny(extra, ip) {
			return bad("ntp", "%s is in a private range that every layer blocks; use a public NTP server or leave ntp empty", r)
		}
	}
	if a.GatewayPort < 1024 || a.GatewayPort > 65535 {
		return bad("gateway_port", "%d is not usable; give a port from 1024 to 65535 (the profile uses 18789)", a.GatewayPort)
	}
	if a.Image == "" || !imageRE.MatchString(a.Image) {
		return bad("image", "%q is not an image reference; write it like ghcr.io/openclaw/openclaw:latest", a.Image)
	}
	if a.Proxmox.VMID < 100 || a.Proxmox.VMID > 999999999 {
		return bad("proxmox.vmid", "%d is not a Proxmox VM ID; IDs run from 100 to 999999999", a.Proxmox.VMID)
	}
	if !nodeRE.MatchString(a.Proxmox.Node) {
		return bad("proxmox.node", "%q is not a Proxmox node name; write the host name shown in the Proxmox UI, like pve", a.Proxmox.Node)
	}
	if !nicRE.MatchString(a.Proxmox.NIC) {
		return bad("proxmox.nic", "%q is not a VM network device; write it like net0", a.Proxmox.NIC)
	}
	if a.Proxmox.APIURL != "" {
		u, err := url.Parse(a.Proxmox.APIURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return bad("proxmox.api_url", "%q is not an https URL; write it like https://pve.example:8006", a.Proxmox.APIURL)
		}
	}
	if a.Proxmox.TokenFile != "" && !strings.HasPrefix(a.Proxmox.TokenFile, "/") {
		return bad("proxmox.token_file", "%q is not an absolute path; give the file holding the API token, like /root/.pve-token", a.Proxmox.TokenFile)
	}
	if a.Proxmox.TokenFile != "" && a.Proxmox.APIURL == "" {
		return bad("proxmox.token_file", "is set but proxmox.api_url is empty; give both to use the API, or neither")
	}
	for _, field := range []struct {
		name string
		list []string
	}{{"probes.must_fail", a.Probes.MustFail}, {"probes.must_work", a.Probes.MustWork}} {
		for _, t := range field.list {
			if err := validProbeTarget(t); err != nil {
				return bad(field.name, "%q %v", t, err)
			}
		}
	}
	if h := a.Probes.LANHost; h != nil {
		ip, err := netip.ParseAddr(h.Address)
		if err != nil || !ip.Is4() || !lan.Contains(ip) {
			return bad("probes.lan_host.address", "%q is not an IPv4 address inside lan_cidr %s; give another LAN machine's address", h.Address, lan)
		}
		if !userRE.MatchString(h.User) {
			return bad("probes.lan_host.user", "%q is not a login name; give the user to SSH in as, like \"admin\"", h.User)
		}
		if !strings.HasPrefix(h.KeyFile, "/") {
			return bad("probes.lan_host.key_file", "%q is not an absolute path; give the private key file to log in with", h.KeyFile)
		}
	}
	for i, c := range a.Probes.Container {
		if field, err := c.validate(); err != nil {
			return &fieldError{file: name, field: fmt.Sprintf("probes.container entry %d, %s", i+1, field), msg: err.Error(),
				loc: fmt.Sprintf("probes.container.%d.%s", i, field)}
		}
	}
	return nil
}

func describeWidth(p netip.Prefix) string {
	if p.Bits() == 0 {
		return "everywhere"
	}
	return fmt.Sprintf("%d addresses", uint64(1)<<(32-p.Bits()))
}

func containsAny(ps []netip.Prefix, ip netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func isPrivate(ip netip.Addr) bool {
	for _, r := range append(PrivateRanges, "127.0.0.0/8", "224.0.0.0/4", "0.0.0.0/8", "255.255.255.255/32") {
		if netip.MustParsePrefix(r).Contains(ip) {
			return true
		}
	}
	return false
}

// validProbeTarget accepts http(s) URLs and host:port.
func validProbeTarget(t string) error {
	if strings.Contains(t, "://") {
		u, err := url.Parse(t)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
			return errors.New("is not a probe target; write an http:// or https:// URL, or host:port")
		}
		return nil
	}
	host, port, ok := strings.Cut(t, ":")
	if n, err := strconv.Atoi(port); !ok || host == "" || err != nil || n < 1 || n > 65535 {
		return errors.New("is not a probe target; write an http:// or https:// URL, or host:port like 192.168.1.2:22")
	}
	return nil
}

// Marshal renders answers as the YAML file the wizard saves.
func (a Answers) Marshal() []byte {
	out, _ := yaml.Marshal(a)
	return out
}
