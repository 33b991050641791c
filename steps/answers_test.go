package steps

import (
	"strings"
	"testing"
)

func TestEmptyAnswersGetProfileDefaults(t *testing.T) {
	a, err := ParseAnswers("a.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.LANCIDR != "192.168.1.0/24" || a.DockerSubnet != "172.20.0.0/24" || a.GatewayPort != 18789 ||
		strings.Join(a.Resolvers, ",") != "1.1.1.1,8.8.8.8" || a.Image != "ghcr.io/openclaw/openclaw:latest" || a.AdminSource != "" {
		t.Fatalf("defaults = %+v", a)
	}
	if _, err := ParseAnswers("a.yaml", []byte("# only a comment\n")); err != nil {
		t.Fatal(err)
	}
}

func TestLabAnswersParse(t *testing.T) {
	a, err := ParseAnswers("lab.yaml", []byte(`lan_cidr: 192.168.1.0/24
admin_source: 192.168.1.50/32
resolvers: [203.0.113.53]
docker_subnet: 172.20.0.0/24
gateway_port: 18789
proxmox: {vmid: 100, node: pve, nic: net0}
probes:
  must_fail: [http://192.168.1.2, 10.0.0.1:80]
  must_work: [https://api.telegram.org]
  lan_host: {address: 192.168.1.2, user: admin, key_file: /root/.ssh/lan}
`))
	if err != nil {
		t.Fatal(err)
	}
	if a.AdminSource != "192.168.1.50/32" || a.Resolvers[0] != "203.0.113.53" || a.Probes.LANHost.Address != "192.168.1.2" {
		t.Fatalf("%+v", a)
	}
	back, err := ParseAnswers("again.yaml", a.Marshal())
	if err != nil || back.AdminSource != a.AdminSource || back.Probes.LANHost.KeyFile != a.Probes.LANHost.KeyFile {
		t.Fatalf("round trip: %v %+v", err, back)
	}
}

// Each bad input must be refused with one sentence that names the field (and the file and line where known).
func TestBadAnswersNameTheField(t *testing.T) {
	cases := []struct{ in, want string }{
		{"lan_cidr: 192.168.1.0/33", "a.yaml:1: lan_cidr: \"192.168.1.0/33\" is not an IPv4 network"},
		{"lan_cidr: 172.16.0.0/12", "a.yaml: docker_subnet: 172.20.0.0/24 overlaps"}, // docker_subnet is not in the file: no line
		{"lan_cidr: 192.168.1.5/24", "lan_cidr: \"192.168.1.5/24\" has host bits set"},
		{"lan_cidr: fd00::/64", "lan_cidr: \"fd00::/64\" is not an IPv4 network"},
		{"lan_cidr: 10.0.0.0/4", "lan_cidr: \"10.0.0.0/4\" has a /4 prefix"},
		{"docker_subnet: 192.168.1.0/26", "docker_subnet: 192.168.1.0/26 overlaps lan_cidr 192.168.1.0/24"},
		{"lan_cidr: 172.16.0.0/12", "docker_subnet: 172.20.0.0/24 overlaps lan_cidr 172.16.0.0/12"},
		{"docker_subnet: 8.8.8.0/24", "docker_subnet: \"8.8.8.0/24\" is not a private range"},
		{"docker_subnet: 172.20.0.0/8", "docker_subnet: \"172.20.0.0/8\" has a /8 prefix"},
		{"extra_private_ranges: [172.20.0.0/16]", "docker_subnet: 172.20.0.0/24 overlaps extra_private_ranges entry 172.20.0.0/16"},
		{"extra_private_ranges: [nope]", "extra_private_ranges: \"nope\" is not an IPv4 network"},
		{"extra_private_ranges: [0.0.0.0/0]", "extra_private_ranges: \"0.0.0.0/0\" would block all traffic"},
		{"admin_source: 0.0.0.0/0", "admin_source: \"0.0.0.0/0\" allows SSH from everywhere"},
		{"admin_source: 192.168.1.500", "admin_source: \"192.168.1.500\" is not an IPv4 address or network"},
		{"admin_source: 172.20.0.9", "admin_source: 172.20.0.9 is inside docker_subnet 172.20.0.0/24"},
		{"admin_user: root", "admin_user: \"root\" is not a usable admin login"},
		{"resolvers: []", "resolvers: at least one DNS resolver is needed"},
		{"resolvers: [192.168.1.1]", "resolvers: 192.168.1.1 is in a private range that every layer blocks"},
		{"resolvers: [10.1.1.1]", "resolvers: 10.1.1.1 is in a private range"},
		{"resolvers: [dns.google]", "resolvers: \"dns.google\" is not an IPv4 address"},
		{"ntp: [192.168.1.1]", "ntp: 192.168.1.1 is in a private range"},
		{"gateway_port: 22", "gateway_port: 22 is not usable; give a port from 1024 to 65535"},
		{"gateway_port: 70000", "gateway_port: 70000 is not usable"},
		{"gateway_port: abc", "a.yaml:1: gateway_port: \"abc\" is not a whole number"},
		{"resolvers: 1.1.1.1", "a.yaml:1: resolvers: \"1.1.1.1\" is not a list"},
		{"image: ''", "image: \"\" is not an image reference"},
		{"image: 'Has Space'", "image: \"Has Space\" is not an image reference"},
		{"proxmox: {vmid: 5}", "proxmox.vmid: 5 is not a Proxmox VM ID"},
		{"proxmox: {nic: eth0}", "proxmox.nic: \"eth0\" is not a VM network device"},
		{"proxmox: {api_url: 'http://pve:8006'}", "proxmox.api_url: \"http://pve:8006\" is not an https URL"},
		{"proxmox: {token_file: /root/t}", "proxmox.token_file: is set but proxmox.api_url is empty"},
		{"proxmox: {api_url: 'https://pve:8006', token_file: t}", "proxmox.token_file: \"t\" is not an absolute path"},
		{"probes: {must_fail: [192.168.1.2]}", "probes.must_fail: \"192.168.1.2\" is not a probe target"},
		{"probes: {must_work: ['ftp://x']}", "probes.must_work: \"ftp://x\" is not a probe target"},
		{"probes: {lan_host: {address: 10.9.9.9, user: a, key_file: /k}}", "probes.lan_host.address: \"10.9.9.9\" is not an IPv4 address inside lan_cidr"},
		{"lan_cird: 192.168.1.0/24", "a.yaml:1: unknown key \"lan_cird\"; accepted keys are lan_cidr"},
		{"lan_cidr: 192.168.1.0/24\nproxmox:\n  vmid: 100\n  nodes: pve", "a.yaml:4: unknown key \"nodes\"; accepted keys are vmid, node, nic"},
		{"- a\n- b", "a.yaml:1: the file must be a mapping of keys to values"},
		{"lan_cidr: [", "a.yaml:1: not valid YAML"},
		{"lan_cidr: a\nlan_cidr: b", "a.yaml:2: "},
	}
	for _, c := range cases {
		_, err := ParseAnswers("a.yaml", []byte(c.in))
		if err == nil {
			t.Errorf("%q: accepted", c.in)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got  %s\n want %s", c.in, err, c.want)
		}
		if strings.Count(strings.TrimSpace(err.Error()), "\n") > 0 {
			t.Errorf("%q: message is more than one line: %q", c.in, err)
		}
	}
}

func FuzzParseAnswers(f *testing.F) {
	f.Add([]byte("lan_cidr: 192.168.1.0/24\nadmin_source: 192.168.1.50\n"))
	f.Add([]byte("resolvers: [1.1.1.1]\nproxmox: {vmid: 101}\nprobes: {lan_host: {address: 192.168.1.2, user: a, key_file: /k}}"))
	f.Add([]byte("gateway_port: 0x10\n"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseAnswers("fuzz.yaml", data)
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "fuzz.yaml") {
				t.Fatalf("error does not name the file: %q", msg)
			}
			return
		}
		// Whatever was accepted must survive a round trip and still validate.
		if _, err := ParseAnswers("again.yaml", a.Marshal()); err != nil {
			t.Fatalf("accepted answers do not round-trip: %v\n%s", err, a.Marshal())
		}
	})
}

// A token pasted into the wrong field is refused without being echoed: the error names the field and says
// a value was hidden, and ordinary values are still quoted (TestAnswersErrors).
func TestAnswersErrorsDoNotEchoTokens(t *testing.T) {
	const bot = "7312845521:AAHfYq3kz0W9mJ2xQeLr5TtUvBn8CdEiFgH"
	const pve = "root@pam!harden=3f1c2b7e-9a4d-4e21-8c55-0d7a9b1e6f42"
	const gw = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	cases := []struct{ in, secret, field string }{
		{"gateway_port: " + bot, bot, "gateway_port"},
		{"lan_cidr: '" + bot + "'", bot, "lan_cidr"},
		{"image: '" + bot + "'", bot, "image"},
		{"admin_user: '" + pve + "'", pve, "admin_user"},
		{"proxmox: {nic: " + gw + "}", gw, "proxmox.nic"},
		{"admin_source: 'PVEAPIToken=" + pve + "'", pve, "admin_source"},
		{"probes: {container: [{target: '" + bot + "', expect: fail}]}", bot, "probes.container entry 1, target"},
		{"probes: {lan_host: {address: 192.168.1.2, user: '" + gw + "', key_file: /k}}", gw, "probes.lan_host.user"},
	}
	for _, c := range cases {
		_, err := ParseAnswers("a.yaml", []byte(c.in))
		if err == nil {
			t.Errorf("%s: accepted", c.field)
			continue
		}
		msg := err.Error()
		for _, part := range []string{c.secret, c.secret[:20], c.secret[len(c.secret)-20:]} {
			if strings.Contains(msg, part) {
				t.Errorf("%s: the error echoes the token: %s", c.field, msg)
			}
		}
		if !strings.Contains(msg, c.field+": ") || !strings.Contains(msg, "not shown: it looks like a token") {
			t.Errorf("%s: %s; want the field named and the value said to be hidden", c.field, msg)
		}
	}
}
