package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
)

// Names of the lab's network namespaces. Every name starts with Prefix, so a later run can find and remove
// what a crashed run left behind.
const (
	Prefix   = "ochlab-"
	NSRouter = Prefix + "router" // 192.168.1.1 (LAN bridge), 203.0.113.1 (internet bridge), the VM's tap
	NSLAN    = Prefix + "lan2"   // 192.168.1.2: the "different LAN host": listeners on 22, 80, 18789; nmap
	NSAdmin  = Prefix + "admin"  // 192.168.1.50: the admin source; the harness's SSH comes from here
	NSPriv   = Prefix + "priv"   // 10.0.0.1 and 169.254.169.254 (on lo), behind the router via 198.51.100.0/30
	NSInet   = Prefix + "inet"   // 203.0.113.10 (api.telegram.org, www.lab.test) and 203.0.113.20 (the mirror)
	NSDNS    = Prefix + "dns"    // 203.0.113.53: dnsmasq, the lab's public resolver
)

// Addresses of the lab.
const (
	VMAddr       = "192.168.1.10"
	VMMAC        = "52:54:00:0c:1a:10"
	RouterLAN    = "192.168.1.1"
	RouterInet   = "203.0.113.1"
	LANHostAddr  = "192.168.1.2"
	AdminAddr    = "192.168.1.50"
	PrivAddr     = "10.0.0.1"
	MetadataAddr = "169.254.169.254"
	InetAddr     = "203.0.113.10"
	MirrorAddr   = "203.0.113.20"
	DNSAddr      = "203.0.113.53"
	TapName      = "ochtap0"
	// runDir holds pid files, logs and the lock shared by every lab run on this machine.
	runDir = "/run/ochlab"
)

// Namespaces lists every namespace the lab creates, router first.
var Namespaces = []string{NSRouter, NSLAN, NSAdmin, NSPriv, NSInet, NSDNS}

// link is one veth pair: Router end in the router namespace on a bridge (or addressed), Host end in NS.
type link struct {
	NS, RouterEnd, Bridge string
	HostAddrs             []string // CIDRs on the host end ("eth0")
	LoAddrs               []string // extra addresses on the host's loopback
	Gateway               string
}

var links = []link{
	{NS: NSLAN, RouterEnd: "l-lan2", Bridge: "br-lan", HostAddrs: []string{LANHostAddr + "/24"}, Gateway: RouterLAN},
	{NS: NSAdmin, RouterEnd: "l-admin", Bridge: "br-lan", HostAddrs: []string{AdminAddr + "/24"}, Gateway: RouterLAN},
	{NS: NSInet, RouterEnd: "i-inet", Bridge: "br-inet", HostAddrs: []string{InetAddr + "/24", MirrorAddr + "/24"}, Gateway: RouterInet},
	{NS: NSDNS, RouterEnd: "i-dns", Bridge: "br-inet", HostAddrs: []string{DNSAddr + "/24"}, Gateway: RouterInet},
	{NS: NSPriv, RouterEnd: "r-priv", HostAddrs: []string{"198.51.100.2/30"}, LoAddrs: []string{PrivAddr + "/32", MetadataAddr + "/32"}, Gateway: "198.51.100.1"},
}

// run runs a command on this machine (LC_ALL=C) and returns its combined output; errors carry argv and output.
func run(ctx context.Context, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("running %q failed: %w\n%s", argv, err, out)
	}
	return string(out), nil
}

// ipIn runs `ip -n NS args...` (NS "" means the command runs where the harness runs, used only to read).
func ipIn(ns string, args ...string) (string, error) {
	argv := []string{"ip"}
	if ns != "" {
		argv = append(argv, "-n", ns)
	}
	return run(context.Background(), append(argv, args...)...)
}

// inNS runs fn on an OS thread switched into namespace ns. Sockets created by fn stay in ns; everything else
// in the process keeps its own namespace. If the thread cannot be switched back it is left locked, so the
// runtime discards it.
func inNS(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(ns)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("namespace %s: %w", ns, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering namespace %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// DialFrom opens a TCP connection from inside lab namespace ns.
func DialFrom(ns, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := inNS(ns, func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, timeout)
		return err
	})
	return c, err
}

// listenIn opens a listener inside lab namespace ns.
func listenIn(ns, network, addr string) (net.Listener, error) {
	var l net.Listener
	err := inNS(ns, func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// buildNetwork creates every namespace, bridge, veth and route of the lab. Nothing is created in the
// namespace the harness runs in: every `ip link add` runs with -n inside a lab namespace.
func buildNetwork() error {
	for _, ns := range Namespaces {
		if _, err := run(context.Background(), "ip", "netns", "add", ns); err != nil {
			return err
		}
		if _, err := ipIn(ns, "link", "set", "lo", "up"); err != nil {
			return err
		}
	}
	r := NSRouter
	steps := [][]string{
		{"link", "add", "br-lan", "type", "bridge"},
		{"addr", "add", RouterLAN + "/24", "dev", "br-lan"},
		{"link", "set", "br-lan", "up"},
		{"link", "add", "br-inet", "type", "bridge"},
		{"addr", "add", RouterInet + "/24", "dev", "br-inet"},
		{"link", "set", "br-inet", "up"},
		{"tuntap", "add", "dev", TapName, "mode", "tap"},
		{"link", "set", TapName, "master", "br-lan"},
		{"link", "set", TapName, "up"},
	}
	for _, s := range steps {
		if _, err := ipIn(r, s...); err != nil {
			return err
		}
	}
	for _, l := range links {
		if _, err := ipIn(r, "link", "add", l.RouterEnd, "type", "veth", "peer", "name", "eth0", "netns", l.NS); err != nil {
			return err
		}
		if l.Bridge != "" {
			if _, err := ipIn(r, "link", "set", l.RouterEnd, "master", l.Bridge); err != nil {
				return err
			}
		} else if _, err := ipIn(r, "addr", "add", "198.51.100.1/30", "dev", l.RouterEnd); err != nil {
			return err
		}
		if _, err := ipIn(r, "link", "set", l.RouterEnd, "up"); err != nil {
			return err
		}
		for _, a := range l.HostAddrs {
			if _, err := ipIn(l.NS, "addr", "add", a, "dev", "eth0"); err != nil {
				return err
			}
		}
		for _, a := range l.LoAddrs {
			if _, err := ipIn(l.NS, "addr", "add", a, "dev", "lo"); err != nil {
				return err
			}
		}
		if _, err := ipIn(l.NS, "link", "set", "eth0", "up"); err != nil {
			return err
		}
		if _, err := ipIn(l.NS, "route", "add", "default", "via", l.Gateway); err != nil {
			return err
		}
	}
	for _, dst := range []string{PrivAddr + "/32", MetadataAddr + "/32"} {
		if _, err := ipIn(r, "route", "add", dst, "via", "198.51.100.2"); err != nil {
			return err
		}
	}
	// Forwarding is a per-namespace setting: this changes the router namespace only.
	if _, err := run(context.Background(), "ip", "netns", "exec", r, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"); err != nil {
		return err
	}
	// Bridged frames pass the router namespace's iptables (br_netfilter), so a test can enforce the
	// hypervisor-layer rule set on the VM's tap with -m physdev. Per-namespace; absent if br_netfilter is.
	_, _ = run(context.Background(), "ip", "netns", "exec", r, "sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1")
	return nil
}

// ipLink is the part of `ip -j -d link` the sealing check reads.
type ipLink struct {
	Ifindex   int    `json:"ifindex"`
	Ifname    string `json:"ifname"`
	Link      string `json:"link"`
	LinkIndex int    `json:"link_index"`
	NetnsID   *int   `json:"link_netnsid"`
	Master    string `json:"master"`
	Info      *struct {
		Kind string `json:"info_kind"`
	} `json:"linkinfo"`
}

func (l ipLink) kind() string {
	if l.Info == nil {
		return ""
	}
	return l.Info.Kind
}

func links0(ns string) ([]ipLink, error) {
	out, err := ipIn(ns, "-j", "-d", "link", "show")
	if err != nil {
		return nil, err
	}
	var ls []ipLink
	if err := json.Unmarshal([]byte(out), &ls); err != nil {
		return nil, fmt.Errorf("parsing ip -j link in %q: %w", ns, err)
	}
	return ls, nil
}

// netnsIDs maps the netns ids known inside ns to namespace names (`ip -n NS netns list-id`).
func netnsIDs(ns string) (map[int]string, error) {
	out, err := ipIn(ns, "netns", "list-id")
	if err != nil {
		return nil, err
	}
	ids := map[int]string{}
	for _, line := range strings.Split(out, "\n") {
		// "nsid 0 (iproute2 netns name: ochlab-lan2)"; a namespace without a name has no parenthesis
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nsid" {
			id, err := strconv.Atoi(f[1])
			if err != nil {
				continue
			}
			name := ""
			if i := strings.Index(line, "netns name: "); i >= 0 {
				name = strings.TrimSuffix(strings.TrimSpace(line[i+len("netns name: "):]), ")")
			}
			ids[id] = name
		}
	}
	return ids, nil
}

// rootLinkNames lists the interfaces of the namespace the harness runs in (read-only).
func rootLinkNames() ([]string, error) {
	ls, err := links0("")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range ls {
		names = append(names, l.Ifname)
	}
	sort.Strings(names)
	return names, nil
}

// SealReport says what the sealing check looked at.
type SealReport struct {
	Interfaces map[string][]string // namespace -> interfaces
	Routes     map[string][]string // namespace -> routes
	RootNew    []string            // interfaces this machine gained while the lab was built (none of them lab's)
}

// CheckSealed proves the lab has no path to this machine's own network: every lab namespace is a namespace
// other than the harness's; each holds only the interfaces the harness created (lo, its bridges, its tap,
// veths); every veth's peer is in another lab namespace; every route uses only those interfaces and lab
// addresses; and the harness's own namespace has exactly the interfaces it had before the lab was built.
func CheckSealed(rootBefore []string) (*SealReport, error) {
	rep := &SealReport{Interfaces: map[string][]string{}, Routes: map[string][]string{}}
	var problems []string
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return nil, err
	}
	allowed := map[string]map[string]bool{NSRouter: {"lo": true, "br-lan": true, "br-inet": true, TapName: true}}
	for _, l := range links {
		allowed[NSRouter][l.RouterEnd] = true
		allowed[l.NS] = map[string]bool{"lo": true, "eth0": true}
	}
	labNets := []string{"192.168.1.", "203.0.113.", "198.51.100.", PrivAddr, MetadataAddr, "127.", "fe80:", "ff00:", "::1", "local ", "broadcast ", "multicast "}
	for _, ns := range Namespaces {
		// a lab namespace must not be the harness's own (e.g. a mount that points back at it)
		var ino string
		err := inNS(ns, func() error {
			var err error
			ino, err = os.Readlink(fmt.Sprintf("/proc/self/task/%d/ns/net", syscall.Gettid()))
			return err
		})
		if err != nil {
			return nil, err
		}
		if ino == self {
			problems = append(problems, fmt.Sprintf("%s is the harness's own namespace (%s)", ns, ino))
		}
		ls, err := links0(ns)
		if err != nil {
			return nil, err
		}
		ids, err := netnsIDs(ns)
		if err != nil {
			return nil, err
		}
		for _, l := range ls {
			rep.Interfaces[ns] = append(rep.Interfaces[ns], l.Ifname)
			if !allowed[ns][l.Ifname] {
				problems = append(problems, fmt.Sprintf("%s: unexpected interface %s (%s)", ns, l.Ifname, l.kind()))
			}
			if l.kind() == "veth" {
				peerNS := "?"
				if l.NetnsID != nil {
					peerNS = ids[*l.NetnsID]
				}
				if !strings.HasPrefix(peerNS, Prefix) {
					problems = append(problems, fmt.Sprintf("%s: veth %s has its peer outside the lab (namespace %q)", ns, l.Ifname, peerNS))
				}
			}
		}
		for _, family := range []string{"-4", "-6"} {
			out, err := ipIn(ns, family, "route", "show", "table", "all")
			if err != nil {
				return nil, err
			}
			for _, rt := range strings.Split(strings.TrimSpace(out), "\n") {
				if rt == "" {
					continue
				}
				rep.Routes[ns] = append(rep.Routes[ns], rt)
				f := strings.Fields(rt)
				for i := 0; i+1 < len(f); i++ {
					if f[i] == "dev" && !allowed[ns][f[i+1]] {
						problems = append(problems, fmt.Sprintf("%s: route %q uses interface %s", ns, rt, f[i+1]))
					}
					if f[i] == "via" {
						ok := false
						for _, p := range labNets {
							if strings.HasPrefix(f[i+1], p) {
								ok = true
							}
						}
						if !ok {
							problems = append(problems, fmt.Sprintf("%s: route %q has a gateway outside the lab", ns, rt))
						}
					}
				}
			}
		}
	}
	// The harness's namespace: same interfaces as before, and none of them a veth into a lab namespace.
	after, err := rootLinkNames()
	if err != nil {
		return nil, err
	}
	// Other work on this machine may add interfaces of its own meanwhile: new ones are reported, and fail the
	// check below only when they are linked into the lab or carry a lab name.
	before := map[string]bool{}
	for _, n := range rootBefore {
		before[n] = true
	}
	for _, n := range after {
		if rootBefore != nil && !before[n] {
			rep.RootNew = append(rep.RootNew, n)
		}
	}
	rootLinks, err := links0("")
	if err != nil {
		return nil, err
	}
	rootIDs, err := netnsIDs("")
	if err != nil {
		return nil, err
	}
	for _, l := range rootLinks {
		if l.NetnsID != nil && strings.HasPrefix(rootIDs[*l.NetnsID], Prefix) {
			problems = append(problems, fmt.Sprintf("this machine's interface %s is linked into lab namespace %s", l.Ifname, rootIDs[*l.NetnsID]))
		}
		labName := strings.HasPrefix(l.Ifname, "ochtap") || l.Ifname == "br-lan" || l.Ifname == "br-inet" || l.Ifname == "r-priv"
		for _, lk := range links {
			labName = labName || l.Ifname == lk.RouterEnd
		}
		if labName {
			problems = append(problems, fmt.Sprintf("this machine has a lab interface %s", l.Ifname))
		}
	}
	if len(problems) > 0 {
		return rep, fmt.Errorf("the lab is not sealed:\n  %s", strings.Join(problems, "\n  "))
	}
	return rep, nil
}

// pidCmdline is the command line of pid with spaces for NULs, or "" when it does not run.
func pidCmdline(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	return string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
}

// Teardown kills every process the lab started (qemu, dnsmasq and anything else running in a lab
// namespace) and deletes every lab namespace. It is safe to call at any time, also for what a crashed run
// left behind: it only touches namespaces whose names start with Prefix and processes inside them or named
// in the lab's pid files.
func Teardown() error {
	var errs []error
	// processes recorded in pid files (qemu runs in the router namespace, but check by pid file as well)
	pids, _ := filepath.Glob(filepath.Join(runDir, "*.pid"))
	for _, pf := range pids {
		b, err := os.ReadFile(pf)
		if err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 && pid != os.Getpid() {
				cl := pidCmdline(pid)
				if strings.Contains(cl, "ochlab") {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		_ = os.Remove(pf)
	}
	out, err := run(context.Background(), "ip", "netns", "list")
	if err != nil {
		return err
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], Prefix) {
			names = append(names, f[0])
		}
	}
	for _, ns := range names {
		pout, _ := run(context.Background(), "ip", "netns", "pids", ns)
		for _, p := range strings.Fields(pout) {
			if pid, err := strconv.Atoi(p); err == nil && pid > 1 && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	// give killed processes a moment to release their namespace references (qemu holds the tap)
	deadline := time.Now().Add(10 * time.Second)
	for _, ns := range names {
		for {
			pout, _ := run(context.Background(), "ip", "netns", "pids", ns)
			if strings.TrimSpace(pout) == "" || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if _, err := run(context.Background(), "ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
