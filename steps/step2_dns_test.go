package steps

import (
	"strings"
	"testing"
)

func TestPlanResolverStaticLANRouter(t *testing.T) {
	e := newStep2Env(t)
	e.write(resolvConf, "# set by the installer\nsearch lan\nnameserver 192.168.1.1\noptions edns0\n", 0o644)
	rs, err := planResolver(e.h, []string{"203.0.113.53", "1.1.1.1"})
	if err != nil {
		t.Fatal(err)
	}
	if rs.Manager != resolverStatic || len(rs.Writes) != 1 || strings.Join(rs.Outside, ",") != "192.168.1.1" {
		t.Fatalf("%+v", rs)
	}
	want := "# Written by openclaw-harden (Step 2): only the resolvers UFW allows out to (answers: resolvers).\n" +
		"nameserver 203.0.113.53\nnameserver 1.1.1.1\nsearch lan\noptions edns0\n"
	if rs.Writes[0].Path != resolvConf || rs.Writes[0].Data != want {
		t.Errorf("resolv.conf:\n%s\nwant:\n%s", rs.Writes[0].Data, want)
	}
	// written: nothing more to do
	e.write(resolvConf, want, 0o644)
	if rs, _ := planResolver(e.h, []string{"203.0.113.53", "1.1.1.1"}); len(rs.Writes) != 0 {
		t.Errorf("second plan writes %+v", rs.Writes)
	}
	// a subset of the chosen resolvers is fine as it is
	e.write(resolvConf, "nameserver 1.1.1.1\n", 0o644)
	if rs, _ := planResolver(e.h, []string{"203.0.113.53", "1.1.1.1"}); len(rs.Writes) != 0 {
		t.Errorf("an allowed resolver is rewritten: %+v", rs.Writes)
	}
	// no name server at all
	e.write(resolvConf, "", 0o644)
	if rs, _ := planResolver(e.h, []string{"203.0.113.53"}); len(rs.Writes) != 1 {
		t.Errorf("an empty resolv.conf is left empty: %+v", rs)
	}
}

func TestPlanResolverDHClient(t *testing.T) {
	e := newStep2Env(t)
	e.write(resolvConf, "domain lan\nsearch lan\nnameserver 192.168.1.1\n", 0o644)
	e.write(dhclientConf, "option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;\n"+
		"send host-name = gethostname();\nprepend domain-name-servers 127.0.0.1;\nrequest subnet-mask, routers, domain-name-servers;\n", 0o644)
	e.write("/var/lib/dhcp/dhclient.eth0.leases", "lease {}\n", 0o644)
	rs, err := planResolver(e.h, []string{"203.0.113.53"})
	if err != nil {
		t.Fatal(err)
	}
	if rs.Manager != resolverDHClient || len(rs.Writes) != 2 || rs.Writes[1].Path != dhclientConf {
		t.Fatalf("%+v", rs)
	}
	dh := rs.Writes[1].Data
	if strings.Contains(dh, "prepend domain-name-servers") || !strings.HasSuffix(dh, "supersede domain-name-servers 203.0.113.53;\n") ||
		!strings.Contains(dh, "request subnet-mask, routers, domain-name-servers;") {
		t.Errorf("dhclient.conf:\n%s", dh)
	}
	if again := dhclientSupersede(dh, []string{"203.0.113.53"}); again != dh {
		t.Errorf("not idempotent:\n%s\nthen:\n%s", dh, again)
	}
	// resolv.conf already right but dhclient would put the router back at the next renewal
	e.write(resolvConf, "nameserver 203.0.113.53\n", 0o644)
	rs, _ = planResolver(e.h, []string{"203.0.113.53"})
	if len(rs.Writes) != 1 || rs.Writes[0].Path != dhclientConf {
		t.Errorf("dhclient.conf left to undo it: %+v", rs.Writes)
	}
	e.write(dhclientConf, dh, 0o644)
	if rs, _ = planResolver(e.h, []string{"203.0.113.53"}); len(rs.Writes) != 0 {
		t.Errorf("done, yet %+v", rs.Writes)
	}
}

func TestPlanResolverSystemdResolved(t *testing.T) {
	e := newStep2Env(t)
	e.write(resolvConf, "# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n", 0o644)
	e.write(resolvedUpstream, "# This is /run/systemd/resolve/resolv.conf managed by man:systemd-resolved(8).\nnameserver 192.168.1.1\n", 0o644)
	rs, err := planResolver(e.h, []string{"203.0.113.53"})
	if err != nil {
		t.Fatal(err)
	}
	if rs.Manager != resolverResolved || len(rs.Writes) != 1 || rs.Writes[0].Path != resolvedDropIn || strings.Join(rs.Restart, " ") != "systemctl restart systemd-resolved" {
		t.Fatalf("%+v", rs)
	}
	if !strings.Contains(rs.Writes[0].Data, "[Resolve]\nDNS=\nDNS=203.0.113.53\nDomains=~.\n") {
		t.Errorf("drop-in:\n%s", rs.Writes[0].Data)
	}
	e.write(resolvedDropIn, rs.Writes[0].Data, 0o644)
	rs, _ = planResolver(e.h, []string{"203.0.113.53"})
	if len(rs.Writes) != 0 || len(rs.Notes) != 1 || !strings.Contains(rs.Notes[0], "192.168.1.1") {
		t.Errorf("after the drop-in: %+v", rs)
	}
}
