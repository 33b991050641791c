package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"openclaw-harden/system"
)

// MatrixStep is Step 8: the verification matrix. It changes nothing; Verify probes from inside the gateway
// container's network namespace, from the VM, and (optionally) from another LAN host over SSH, all at once,
// each probe bounded by its timeout, and re-reads the host state Steps 0, 2 and 4 verify.
type MatrixStep struct {
	// Container, when set, is the namespace container probes run in, instead of the running gateway
	// container's (tests). Operators name a container with OPENCLAW_HARDEN_GATEWAY_CONTAINER.
	Container *system.NetNS
	// Probes, when set, replaces DefaultProbes (tests).
	Probes []Probe
	// NoHost skips the VM's host-state checks (tests without UFW, Docker or sshd).
	NoHost bool
}

// GatewayContainerEnv names the container to probe from when it is not Step 6's (a stand-in, another name).
const GatewayContainerEnv = "OPENCLAW_HARDEN_GATEWAY_CONTAINER"

// GatewayService is the compose service Step 6 deploys.
const GatewayService = "openclaw-gateway"

func (MatrixStep) ID() int       { return 8 }
func (MatrixStep) Title() string { return "Verification matrix" }

// ProfileCommands are the profile's Step 8 commands as written, for the training view and the benchmark.
func ProfileCommands(a Answers, vmIP string) []string {
	gw, _ := lanHostN(a.LANCIDR, 1)
	lan2, _ := lanHostN(a.LANCIDR, 2)
	port := strconv.Itoa(a.GatewayPort)
	return []string{
		"# from inside the container (docker exec -it <gateway> sh):",
		"curl -m 5 http://" + gw, "curl -m 5 http://" + lan2, "curl -m 5 http://10.0.0.1", "curl -m 5 http://169.254.169.254",
		"curl -m 10 https://" + TelegramAPI, "nslookup google.com " + strings.Join(a.Resolvers, " / "),
		"# on the VM:",
		"sudo ufw status verbose", "sudo iptables -S DOCKER-USER", "sudo ss -tlnp | grep " + port, "ip -6 addr",
		"# from a different LAN host:",
		"nmap -Pn -p 22," + port + " " + vmIP, "curl -m 5 http://" + vmIP + ":" + port,
	}
}

// Plan lists the probes; Step 8 changes nothing.
func (m MatrixStep) Plan(ctx context.Context, h *system.Host, a Answers) (Plan, error) {
	p := Plan{Step: 8, Title: m.Title(), Commands: ProfileCommands(a, "<vm-ip>")}
	for _, pr := range m.probes(a) {
		p.Notes = append(p.Notes, fmt.Sprintf("probe from %s: %s — must %s (%s, timeout %s)", pr.Source, pr.Describe(),
			map[bool]string{true: "work", false: "fail"}[pr.MustWork], pr.Why, pr.Timeout))
	}
	p.Notes = append(p.Notes, "from the VM: UFW (Step 2), DOCKER-USER order (Step 4), gateway port bound to 127.0.0.1 only, no global IPv6, sshd effective settings (Step 0), nothing on 5353/udp")
	if a.Probes.LANHost == nil {
		p.Notes = append(p.Notes, "no probes.lan_host in the answers: the LAN view (only SSH from the admin source, no gateway port) will not be tested")
	}
	return p, nil
}

// Apply does nothing: Step 8 only verifies.
func (MatrixStep) Apply(context.Context, *system.Host, Plan) error { return nil }

func (m MatrixStep) probes(a Answers) []Probe {
	if m.Probes != nil {
		return m.Probes
	}
	return DefaultProbes(a)
}

// gatewayContainer is the running container the container probes start from.
type gatewayContainer struct {
	ID, Name string
	PID      int
	How      string // how it was found
	Ports    map[string][]hostBinding
}

// hostBinding is one published port as `docker inspect` shows it.
type hostBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

// findGateway finds the running gateway container: the one named in OPENCLAW_HARDEN_GATEWAY_CONTAINER, else
// Step 6's compose service, else the one publishing the gateway port.
func findGateway(ctx context.Context, h *system.Host, a Answers) (gatewayContainer, error) {
	if g, answered, err := findGatewayAPI(ctx, h, a); answered {
		return g, err
	}
	return findGatewayCLI(ctx, h, a)
}

// findGatewayAPI is findGateway through the Docker API socket; answered is false when the API could not be
// asked at all (no socket, no permission), and the docker CLI should be tried instead.
func findGatewayAPI(ctx context.Context, h *system.Host, a Answers) (g gatewayContainer, answered bool, err error) {
	ref := strings.TrimSpace(h.Getenv(GatewayContainerEnv))
	if ref != "" {
		g.How = GatewayContainerEnv + "=" + ref
	} else {
		for _, f := range []struct{ key, value, how string }{
			{"label", "com.docker.compose.service=" + GatewayService, "compose service " + GatewayService},
			{"publish", strconv.Itoa(a.GatewayPort), "publishes port " + strconv.Itoa(a.GatewayPort)},
		} {
			ids, err := h.DockerRunningAPI(ctx, f.key, f.value)
			if err != nil {
				return g, false, err
			}
			if len(ids) > 0 {
				ref, g.How = ids[0], f.how
				break
			}
		}
		if ref == "" {
			return g, true, errNoGateway(a)
		}
	}
	c, err := h.DockerInspectAPI(ctx, ref)
	if err != nil {
		return g, !errors.Is(err, system.ErrDockerAPIUnreachable), fmt.Errorf("docker inspect %s: %w", ref, err)
	}
	g.ID, g.Name, g.PID = c.ID, strings.TrimPrefix(c.Name, "/"), c.State.Pid
	for port, bs := range c.NetworkSettings.Ports {
		for _, b := range bs {
			if g.Ports == nil {
				g.Ports = map[string][]hostBinding{}
			}
			g.Ports[port] = append(g.Ports[port], hostBinding{HostIP: b.HostIP, HostPort: b.HostPort})
		}
	}
	if !c.State.Running || g.PID <= 0 {
		return g, true, fmt.Errorf("container %s is not running", g.Name)
	}
	return g, true, nil
}

func errNoGateway(a Answers) error {
	return fmt.Errorf("no running container of compose service %s and none publishing port %d: deploy OpenClaw (Step 6), or name the container in %s",
		GatewayService, a.GatewayPort, GatewayContainerEnv)
}

// findGatewayCLI is findGateway through the docker CLI.
func findGatewayCLI(ctx context.Context, h *system.Host, a Answers) (gatewayContainer, error) {
	var g gatewayContainer
	ids := []string{}
	if name := strings.TrimSpace(h.Getenv(GatewayContainerEnv)); name != "" {
		ids, g.How = []string{name}, GatewayContainerEnv+"="+name
	} else {
		for _, f := range []struct{ filter, how string }{
			{"label=com.docker.compose.service=" + GatewayService, "compose service " + GatewayService},
			{"publish=" + strconv.Itoa(a.GatewayPort), "publishes port " + strconv.Itoa(a.GatewayPort)},
		} {
			out, err := h.Read(ctx, "docker", "ps", "-q", "--no-trunc", "--filter", f.filter)
			if err != nil {
				if isNotFound(err) {
					return g, errors.New("docker is not installed: there is no gateway container to probe from")
				}
				return g, fmt.Errorf("docker ps: %s", cmdOutput(err))
			}
			if ids = strings.Fields(string(out)); len(ids) > 0 {
				g.How = f.how
				break
			}
		}
		if len(ids) == 0 {
			return g, errNoGateway(a)
		}
	}
	out, err := h.Read(ctx, "docker", "inspect", "-f", "{{.Id}}|{{.Name}}|{{.State.Running}}|{{.State.Pid}}|{{json .NetworkSettings.Ports}}", ids[0])
	if err != nil {
		return g, fmt.Errorf("docker inspect %s: %s", ids[0], cmdOutput(err))
	}
	f := strings.SplitN(strings.TrimSpace(string(out)), "|", 5)
	if len(f) != 5 {
		return g, fmt.Errorf("docker inspect %s: unexpected output %q", ids[0], out)
	}
	g.ID, g.Name = f[0], strings.TrimPrefix(f[1], "/")
	g.PID, _ = strconv.Atoi(f[3])
	if f[2] != "true" || g.PID <= 0 {
		return g, fmt.Errorf("container %s is not running", g.Name)
	}
	if f[4] != "null" {
		_ = json.Unmarshal([]byte(f[4]), &g.Ports)
	}
	return g, nil
}

// Verify runs the matrix: every probe concurrently, each bounded by its timeout, alongside the host checks
// and the LAN host's probes. Checks come back grouped by source: container, vm, lan.
func (m MatrixStep) Verify(ctx context.Context, h *system.Host, a Answers) []Check {
	probes := m.probes(a)
	var resolvers []string
	for _, r := range a.Resolvers {
		resolvers = append(resolvers, net.JoinHostPort(r, "53"))
	}
	groups := map[ProbeSource][]Check{}
	var mu sync.Mutex
	add := func(src ProbeSource, cs ...Check) {
		mu.Lock()
		groups[src] = append(groups[src], cs...)
		mu.Unlock()
	}

	var containerProbes, vmProbes []Probe
	order := map[string]int{}
	for i, p := range probes {
		order[p.ID] = i
		switch p.Source {
		case SourceContainer:
			containerProbes = append(containerProbes, p)
		case SourceVM:
			vmProbes = append(vmProbes, p)
		}
	}
	var wg sync.WaitGroup
	runProbe := func(pr prober, p Probe) {
		defer wg.Done()
		add(p.Source, probeCheck(p, pr.run(ctx, p)))
	}

	// The VM's and the LAN host's work starts while the gateway container is looked up; the VM's socket
	// table is read before this process opens its own listener there.
	hostSockets := make(chan struct{})
	if !m.NoHost {
		wg.Add(1)
		go func() {
			defer wg.Done()
			add(SourceVM, hostUDPListeners(ctx, h))
			close(hostSockets)
		}()
	} else {
		close(hostSockets)
	}
	hostPr := prober{h: h, resolvers: resolvers}
	for _, p := range vmProbes {
		wg.Add(1)
		go func(p Probe) {
			if p.Kind == KindUDPListen {
				<-hostSockets // our own listener must not be in the table that is checked for listeners
			}
			runProbe(hostPr, p)
		}(p)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		add(SourceLAN, lanChecks(ctx, h, a)...)
	}()
	var gw *gatewayContainer
	gwKnown := make(chan struct{})
	if !m.NoHost {
		wg.Add(1)
		go func() {
			defer wg.Done()
			add(SourceVM, vmChecks(ctx, h, a, func() *gatewayContainer { <-gwKnown; return gw })...)
		}()
	}

	var ns *system.NetNS
	if m.Container != nil {
		ns = m.Container
		add(SourceContainer, Check{ID: "step8.container.found", Name: "namespace to probe from", Expect: "given", Got: ns.String(), OK: true, Source: string(SourceContainer)})
	} else if len(containerProbes) > 0 {
		c := Check{ID: "step8.container.found", Name: "running gateway container", Expect: "found, running", Source: string(SourceContainer)}
		g, err := findGateway(ctx, h, a)
		if err != nil {
			var names []string
			for _, p := range containerProbes {
				names = append(names, p.Describe())
			}
			c.Got, c.Reason = "none", fmt.Sprintf("%v; so these %d container probes were not run: %s", err, len(names), strings.Join(names, "; "))
		} else {
			gw = &g
			n := system.ContainerNetNS(g.PID, fmt.Sprintf("container %s (pid %d)", g.Name, g.PID))
			ns = &n
			c.Got, c.OK = fmt.Sprintf("%s, pid %d (%s)", g.Name, g.PID, g.How), true
		}
		add(SourceContainer, c)
	}
	close(gwKnown)
	if gw != nil {
		// The container's socket table before the container probes open a listener there.
		add(SourceContainer, containerUDPListeners(h, gw.PID))
	}
	if ns != nil {
		pr := prober{h: h, ns: *ns, resolvers: resolvers}
		for _, p := range containerProbes {
			wg.Add(1)
			go runProbe(pr, p)
		}
	}
	wg.Wait()

	var out []Check
	for _, src := range []ProbeSource{SourceContainer, SourceVM, SourceLAN} {
		cs := groups[src]
		sort.SliceStable(cs, func(i, j int) bool { return checkRank(cs[i], order) < checkRank(cs[j], order) })
		out = append(out, cs...)
	}
	return out
}

// checkRank keeps the found-check first, probes in matrix order, and other checks after them.
func checkRank(c Check, order map[string]int) int {
	if strings.HasSuffix(c.ID, ".found") {
		return -1
	}
	if i, ok := order[c.ID]; ok {
		return i
	}
	return 1 << 20
}

// containerUDPListeners reads the container's UDP socket table (/proc/PID/net/udp, udp6): nothing may listen
// on 5353 (mDNS) there.
func containerUDPListeners(h *system.Host, pid int) Check {
	c := Check{ID: "step8.container.udp5353", Name: "nothing listens on 5353/udp in the container", Expect: "no socket on 5353/udp",
		Source: string(SourceContainer), Target: "udp :5353"}
	var found []string
	for _, f := range []string{"udp", "udp6"} {
		data, err := h.ReadProcNet(pid, f)
		if err != nil {
			if f == "udp" {
				c.Got, c.Reason = "unreadable", err.Error()
				return c
			}
			continue
		}
		for _, addr := range procNetPorts(string(data), 5353) {
			found = append(found, f+" "+addr)
		}
	}
	c.Got = joinOr(found, ", ", "none")
	c.OK = len(found) == 0
	if !c.OK {
		c.Reason = "a process in the container listens for mDNS: OpenClaw should not depend on multicast"
	}
	return c
}

// procNetPorts returns the local addresses (hex, as the kernel prints them) of the sockets on port in a
// /proc/net/{udp,tcp}[6] table.
func procNetPorts(table string, port int) []string {
	var out []string
	want := fmt.Sprintf("%04X", port)
	for i, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 2 {
			continue
		}
		if j := strings.LastIndexByte(f[1], ':'); j >= 0 && strings.EqualFold(f[1][j+1:], want) {
			out = append(out, f[1])
		}
	}
	return out
}

// retag files another step's checks under Step 8's VM source, keeping their own id after the prefix.
func retag(cs []Check) []Check {
	for i := range cs {
		cs[i].ID = "step8.vm." + cs[i].ID
		cs[i].Source = string(SourceVM)
	}
	return cs
}

// vmChecks re-reads what Steps 0, 2 and 4 verify and the gateway's exposure on the VM, concurrently;
// gateway blocks until the container lookup is done.
func vmChecks(ctx context.Context, h *system.Host, a Answers, gateway func() *gatewayContainer) []Check {
	var mu sync.Mutex
	var cs []Check
	var wg sync.WaitGroup
	run := func(fn func() []Check) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := fn()
			mu.Lock()
			cs = append(cs, r...)
			mu.Unlock()
		}()
	}
	// UFW and DOCKER-USER one after the other: both read iptables, and iptables-legacy holds a lock.
	run(func() []Check {
		var cs []Check
		if groups, err := desiredUFW(a); err != nil {
			cs = append(cs, Check{ID: "step8.vm.ufw", Name: "UFW as Step 2 plans it", Expect: "computable from the answers", Got: "no", Reason: err.Error(), Source: string(SourceVM)})
		} else {
			cs = append(cs, retag(verifyUFW(ctx, h, ufwFlatten(groups)))...)
		}
		return append(cs, retag(DockerUserStep{}.Verify(ctx, h, a))...)
	})
	run(func() []Check { return gatewayExposure(ctx, h, a, gateway()) })
	run(func() []Check {
		g := Check{ID: "step8.vm.ipv6.global", Name: "no global IPv6 address (ip -6 addr)", Expect: "none", Source: string(SourceVM)}
		if out, err := h.Read(ctx, "ip", "-j", "-6", "addr"); err != nil {
			g.Got, g.Reason = "unknown", "ip -j -6 addr: "+cmdOutput(err)
		} else if _, global, err := parseIPAddr(out); err != nil {
			g.Got, g.Reason = "unreadable", err.Error()
		} else {
			g.Got, g.OK = joinOr(global, ", ", "none"), len(global) == 0
			if !g.OK {
				g.Reason = "a global IPv6 address bypasses the IPv4-only rules; apply Step 2"
			}
		}
		return []Check{g}
	})
	run(func() []Check { return sshdChecks(ctx, h, a) })
	wg.Wait()
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].ID < cs[j].ID })
	return cs
}

// hostUDPListeners: nothing on the VM listens on 5353/udp (mDNS). Read before this process opens its own
// listeners, and its own sockets are skipped anyway.
func hostUDPListeners(ctx context.Context, h *system.Host) Check {
	c := Check{ID: "step8.vm.udp5353", Name: "nothing listens on 5353/udp on the VM (ss -tulpn)", Expect: "no socket on 5353/udp", Source: string(SourceVM), Target: "udp :5353"}
	out, err := h.Read(ctx, "ss", "-H", "-tulpn")
	if err != nil {
		c.Got, c.Reason = "unknown", "ss -H -tulpn: "+cmdOutput(err)
		return c
	}
	self := fmt.Sprintf("pid=%d,", os.Getpid())
	var found []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, self) {
			continue
		}
		for _, l := range parseListeners(line) {
			if l.Port == "5353" && strings.HasPrefix(l.Proto, "udp") {
				found = append(found, l.String())
			}
		}
	}
	c.Got, c.OK = joinOr(found, "; ", "none"), len(found) == 0
	if !c.OK {
		c.Reason = "an mDNS responder runs on the VM (avahi?): remove it, nothing in this deployment needs it"
	}
	return c
}

// gatewayExposure: the gateway port is bound only to loopback, by Docker's port bindings and by any socket.
func gatewayExposure(ctx context.Context, h *system.Host, a Answers, gw *gatewayContainer) []Check {
	port := strconv.Itoa(a.GatewayPort)
	var cs []Check
	ls := Check{ID: "step8.vm.gateway-listen", Name: "sockets on port " + port + " (ss -tulpn)", Expect: "none, or 127.0.0.1 only",
		Source: string(SourceVM), Target: "tcp :" + port}
	if out, err := h.Read(ctx, "ss", "-H", "-tulpn"); err != nil {
		ls.Got, ls.Reason = "unknown", "ss -H -tulpn: "+cmdOutput(err)
	} else {
		var all, bad []string
		for _, l := range parseListeners(string(out)) {
			if l.Port != port || !strings.HasPrefix(l.Proto, "tcp") {
				continue
			}
			all = append(all, l.String())
			if ip, err := netip.ParseAddr(l.Addr); err != nil || !ip.Unmap().IsLoopback() {
				bad = append(bad, l.String())
			}
		}
		ls.Got, ls.OK = joinOr(all, "; ", "none (Docker forwards the published port in the kernel)"), len(bad) == 0
		if !ls.OK {
			ls.Reason = "listening beyond loopback: " + strings.Join(bad, "; ")
		}
	}
	cs = append(cs, ls)
	pb := Check{ID: "step8.vm.gateway-publish", Name: "the gateway container's published ports", Expect: "127.0.0.1:" + port + " only",
		Source: string(SourceVM), Target: "tcp :" + port}
	switch {
	case gw == nil:
		pb.Got, pb.Reason = "no gateway container", "no running gateway container was found (see step8.container.found)"
	default:
		var all, bad []string
		for cport, bs := range gw.Ports {
			for _, b := range bs {
				s := net.JoinHostPort(b.HostIP, b.HostPort) + "→" + cport
				all = append(all, s)
				if ip, err := netip.ParseAddr(b.HostIP); err != nil || !ip.Unmap().IsLoopback() {
					bad = append(bad, s)
				}
			}
		}
		sort.Strings(all)
		pb.Got = joinOr(all, ", ", "nothing published")
		pb.OK = len(all) > 0 && len(bad) == 0
		switch {
		case len(bad) > 0:
			pb.Reason = "published beyond loopback: " + strings.Join(bad, ", ") + "; publish 127.0.0.1:" + port + ":" + port + " only (Step 6)"
		case len(all) == 0:
			pb.Reason = "the gateway port is not published on 127.0.0.1: the operator's SSH tunnel has nothing to reach"
		}
	}
	return append(cs, pb)
}

// sshdChecks: the effective sshd settings Step 0 sets, and what the running sshd offers a client.
func sshdChecks(ctx context.Context, h *system.Host, a Answers) []Check {
	eff, err := readEffective(ctx, h, "")
	if err != nil {
		return []Check{{ID: "step8.vm.sshd", Name: "sshd effective configuration (sshd -T)", Expect: "readable", Got: "failed", Reason: err.Error(), Source: string(SourceVM)}}
	}
	var cs []Check
	for _, w := range wantedSSHD() {
		c := Check{ID: "step8.vm.sshd." + w.Key, Name: sshdCanonicalKey(w.Key) + " (sshd -T)", Expect: w.Value, Got: sshOr(eff.get(w.Key), "unset"), Source: string(SourceVM)}
		c.OK = strings.EqualFold(c.Got, w.Value)
		if !c.OK {
			c.Reason = "apply Step 0"
		}
		cs = append(cs, c)
	}
	user, _ := sshAdminUser(ctx, h, a)
	t := sshTarget(h, eff)
	p := Probe{ID: "step8.vm.ssh-methods", Source: SourceVM, Kind: KindSSHAuth, Target: t.Addr, Name: sshOr(user, "root"), MustWork: true, Timeout: DefaultProbeTimeout}
	c := probeCheck(p, prober{h: h}.run(ctx, p))
	c.Name = fmt.Sprintf("login methods sshd offers %s at %s", p.Name, t.Addr)
	return append(cs, c)
}

// vmLANAddress is the VM's own address inside lan_cidr (what LAN hosts connect to).
func vmLANAddress(ctx context.Context, h *system.Host, a Answers) (string, error) {
	lan, err := netip.ParsePrefix(a.LANCIDR)
	if err != nil {
		return "", err
	}
	out, err := h.Read(ctx, "ip", "-j", "-4", "addr")
	if err != nil {
		return "", fmt.Errorf("ip -j -4 addr: %s", cmdOutput(err))
	}
	items, _, err := parseIPAddr(out)
	if err != nil {
		return "", err
	}
	for _, it := range items {
		f := strings.Fields(it.Key) // "eth0 inet 192.168.1.10/24"
		if len(f) != 3 {
			continue
		}
		if p, err := netip.ParsePrefix(f[2]); err == nil && lan.Contains(p.Addr()) {
			return p.Addr().String(), nil
		}
	}
	return "", fmt.Errorf("the VM has no address inside lan_cidr %s", lan)
}

// lanProbe is one probe the LAN host runs, as a bash command that needs nothing beyond bash and coreutils.
type lanProbe struct {
	Probe
	cmd string
}

func lanProbes(a Answers, vmIP string) []lanProbe {
	port := strconv.Itoa(a.GatewayPort)
	sshWorks := false
	if src, ok := parseSource(a.AdminSource); ok && a.Probes.LANHost != nil {
		if ip, err := netip.ParseAddr(a.Probes.LANHost.Address); err == nil {
			sshWorks = src.Contains(ip)
		}
	}
	sshWhy := "SSH is reachable only from the admin source (" + sshOr(a.AdminSource, "unset") + "), not from this LAN host"
	if sshWorks {
		sshWhy = "this LAN host is the admin source: SSH must answer it"
	}
	tcp := func(host, port string) string {
		return "exec 3<>/dev/tcp/" + host + "/" + port + " || exit 1; echo connected"
	}
	httpCmd := "trap '' PIPE; exec 3<>/dev/tcp/" + vmIP + "/" + port + ` || exit 1; printf "GET / HTTP/1.0\r\nHost: ` + vmIP +
		`\r\n\r\n" >&3 2>/dev/null; IFS= read -r line <&3; printf "%s\n" "$line"`
	return []lanProbe{
		{Probe{ID: "step8.lan.ssh", Source: SourceLAN, Kind: KindTCP, Target: net.JoinHostPort(vmIP, "22"), MustWork: sshWorks, Why: sshWhy}, tcp(vmIP, "22")},
		{Probe{ID: "step8.lan.gateway-tcp", Source: SourceLAN, Kind: KindTCP, Target: net.JoinHostPort(vmIP, port), Why: "the gateway port is closed to the LAN"}, tcp(vmIP, port)},
		{Probe{ID: "step8.lan.gateway-http", Source: SourceLAN, Kind: KindHTTP, Target: "http://" + net.JoinHostPort(vmIP, port) + "/", Why: "the gateway does not answer the LAN without the SSH tunnel"}, httpCmd},
	}
}

// lanManual is what an operator types on the LAN host for the same probes.
func lanManual(ps []lanProbe) []string {
	var out []string
	for _, p := range ps {
		switch p.Kind {
		case KindHTTP:
			out = append(out, "curl -m 5 "+p.Target+" (must fail)")
		default:
			want := "must fail"
			if p.MustWork {
				want = "must connect"
			}
			host, port, _ := net.SplitHostPort(p.Target)
			out = append(out, fmt.Sprintf("timeout 5 bash -c 'exec 3<>/dev/tcp/%s/%s' (%s)", host, port, want))
		}
	}
	return out
}

// lanScript runs every probe at once on the LAN host; each prints "PROBE <i> <exit> <ms> <output>".
func lanScript(ps []lanProbe, timeout time.Duration) string {
	var b strings.Builder
	secs := strconv.Itoa(int(timeout.Round(time.Second).Seconds()))
	b.WriteString(`p() { t0=$(date +%s%N); out=$(timeout ` + secs + ` bash -c "$2" 2>&1 </dev/null); rc=$?; ` +
		`echo "PROBE $1 $rc $(( ($(date +%s%N) - t0) / 1000000 )) $(printf %s "$out" | tr '\r\n' '  ' | head -c 200)"; }` + "\n")
	for i, p := range ps {
		fmt.Fprintf(&b, "p %d %s &\n", i, system.ShellQuote([]string{p.cmd}))
	}
	b.WriteString("wait\n")
	return b.String()
}

// lanResult reads one PROBE line into a result; bash and timeout say how a connection failed in words.
func lanResult(rc int, ms int64, out string) probeResult {
	r := probeResult{Took: time.Duration(ms) * time.Millisecond, Detail: strings.TrimSpace(out)}
	low := strings.ToLower(out)
	if i := strings.Index(out, "HTTP/"); i >= 0 {
		r.Detail = strings.TrimSpace(out[i:])
	}
	switch {
	case rc == 0 && (strings.Contains(out, "connected") || strings.HasPrefix(r.Detail, "HTTP/")):
		r.Reached = true
		if strings.HasPrefix(r.Detail, "HTTP/") {
			r.Detail = "answered " + r.Detail
		}
	case rc == 0:
		r.Class, r.Detail = system.FailProtocol, "connected, but the answer is not HTTP: "+r.Detail
	case rc == 124:
		r.Class, r.Detail = system.FailDropped, "no answer within the timeout"
	case strings.Contains(low, "connection refused"):
		r.Class = system.FailRejected
	case strings.Contains(low, "no route to host"), strings.Contains(low, "network is unreachable"):
		r.Class = system.FailNoRoute
	default:
		r.Class = system.FailOther
		if r.Detail == "" {
			r.Detail = "exit " + strconv.Itoa(rc)
		}
	}
	return r
}

const lanUnproven = "unproven without it: that the VM's sshd answers only the admin source and that the gateway port is closed to the LAN, as another machine sees it (Proxmox firewall and UFW seen from outside)"

// lanChecks runs the LAN host's probes over SSH, or says plainly that they were not run.
func lanChecks(ctx context.Context, h *system.Host, a Answers) []Check {
	lh := a.Probes.LANHost
	if lh == nil {
		return []Check{{ID: "step8.lan.not-run", Name: "probes from another LAN host", Expect: "optional (answers probes.lan_host)",
			Got: "not run: no probes.lan_host in the answers", OK: true, Skipped: true, Reason: lanUnproven, Source: string(SourceLAN)}}
	}
	base := Check{ID: "step8.lan.ssh-login", Name: fmt.Sprintf("SSH to the LAN host %s as %s", lh.Address, lh.User), Expect: "logged in, probes run",
		Source: string(SourceLAN), Target: net.JoinHostPort(lh.Address, "22")}
	vmIP, err := vmLANAddress(ctx, h, a)
	if err != nil {
		base.Got, base.Reason = "not run", err.Error()+"; "+lanUnproven
		return []Check{base}
	}
	ps := lanProbes(a, vmIP)
	t0 := time.Now()
	res, err := h.SSHRun(ctx, net.JoinHostPort(lh.Address, "22"), lh.User, lh.KeyFile, "bash -c "+system.ShellQuote([]string{lanScript(ps, DefaultProbeTimeout)}),
		DefaultProbeTimeout, DefaultProbeTimeout+10*time.Second)
	base.DurationMS = time.Since(t0).Milliseconds()
	switch {
	case errors.Is(err, system.ErrDryRun):
		base.Got, base.Reason = "not run (dry run)", "dry run: nothing is sent to the LAN host"
		return []Check{base}
	case err != nil:
		switch class := system.ClassifyProbeError(err); class {
		case system.FailDropped, system.FailBlocked, system.FailNoRoute, system.FailRejected:
			// The hardened VM may not open connections into the LAN (UFW denies out to lan_cidr, the Proxmox
			// firewall drops it): not reaching the LAN host is the hardening working, not a finding.
			base.OK, base.Skipped = true, true
			base.Got = fmt.Sprintf("not run: the VM cannot reach the LAN host over SSH (%s), as the hardening intends (UFW denies out to %s)", class, a.LANCIDR)
			base.Reason = lanUnproven + "; run on the LAN host: " + strings.Join(lanManual(ps), "; ")
		default:
			base.Got, base.Reason = "not run", err.Error()+"; "+lanUnproven
		}
		return []Check{base}
	}
	base.Got, base.OK = fmt.Sprintf("ran %d probes (host key %s, not pinned)", len(ps), sshOr(res.HostKey, "unknown")), true
	cs := []Check{base}
	seen := map[int]bool{}
	for _, line := range strings.Split(res.Stdout, "\n") {
		f := strings.SplitN(strings.TrimSpace(line), " ", 5)
		if len(f) < 4 || f[0] != "PROBE" {
			continue
		}
		i, err1 := strconv.Atoi(f[1])
		rc, err2 := strconv.Atoi(f[2])
		ms, err3 := strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || i < 0 || i >= len(ps) || seen[i] {
			continue
		}
		seen[i] = true
		out := ""
		if len(f) == 5 {
			out = f[4]
		}
		p := ps[i].Probe
		p.Timeout = DefaultProbeTimeout
		cs = append(cs, probeCheck(p, lanResult(rc, ms, out)))
	}
	for i, p := range ps {
		if !seen[i] {
			cs = append(cs, Check{ID: p.ID, Name: p.Describe(), Expect: p.Expect(), Got: "no result", Source: string(SourceLAN), Target: p.Target,
				Reason: fmt.Sprintf("the LAN host printed no result for it (exit %d): %s", res.Exit, strings.TrimSpace(res.Stderr))})
		}
	}
	sort.SliceStable(cs[1:], func(i, j int) bool { return cs[1+i].ID < cs[1+j].ID })
	return cs
}
