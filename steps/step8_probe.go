package steps

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"openclaw-harden/system"
)

// ProbeSource is where a probe is sent from.
type ProbeSource string

const (
	SourceContainer ProbeSource = "container" // inside the gateway container's network namespace
	SourceVM        ProbeSource = "vm"        // this VM, the host
	SourceLAN       ProbeSource = "lan"       // another LAN machine, over SSH (answers.probes.lan_host)
)

// ProbeKind is what a probe does.
type ProbeKind string

const (
	KindTCP       ProbeKind = "tcp"        // TCP connect to Target (host:port)
	KindHTTP      ProbeKind = "http"       // HTTP GET Target (a URL); any HTTP answer counts as reached
	KindTLS       ProbeKind = "tls"        // TLS handshake with Name, certificate verified; Target is host:port
	KindDNS       ProbeKind = "dns"        // query Name (A) at the resolver Target (host:port)
	KindSSHAuth   ProbeKind = "ssh-auth"   // the login methods the sshd at Target offers: publickey only
	KindUDPListen ProbeKind = "udp-listen" // listen on Target (port, or group:port) and report what arrives
)

// DefaultProbeTimeout is one probe's bound; the whole matrix runs in about one of these (profile: curl -m 5).
const DefaultProbeTimeout = 5 * time.Second

// Probe is one row of the verification matrix, as data.
type Probe struct {
	ID       string
	Source   ProbeSource
	Kind     ProbeKind
	Target   string
	Name     string // TLS server name, or the name a DNS probe asks for
	MustWork bool   // false: must fail
	Timeout  time.Duration
	Why      string // what a pass proves
}

// Expect is the expectation as the matrix prints it.
func (p Probe) Expect() string {
	switch {
	case p.Kind == KindUDPListen:
		return "listening works; nothing needed arrives"
	case p.Kind == KindSSHAuth:
		return "publickey only"
	case p.MustWork:
		return "works"
	}
	return ExpectMustFail
}

// ExpectMustFail is the Expect of every must-fail probe's check (the report looks for it).
const ExpectMustFail = "fails (dropped or rejected)"

// Describe is "http GET http://10.0.0.1:80/" and the like.
func (p Probe) Describe() string {
	switch p.Kind {
	case KindHTTP:
		return "http GET " + p.Target
	case KindTLS:
		return "tls " + p.Name + " at " + p.Target
	case KindDNS:
		return "dns " + p.Name + " @" + p.Target
	case KindSSHAuth:
		return "ssh login methods at " + p.Target
	case KindUDPListen:
		return "udp listen " + p.Target
	}
	return string(p.Kind) + " " + p.Target
}

// lanHostN is the nth address of the LAN (1: the usual gateway, 192.168.1.1).
func lanHostN(lan string, n int) (string, bool) {
	p, err := netip.ParsePrefix(lan)
	if err != nil {
		return "", false
	}
	a := p.Masked().Addr()
	for i := 0; i < n; i++ {
		a = a.Next()
	}
	if !p.Contains(a) {
		return "", false
	}
	return a.String(), true
}

// probeFromTarget turns an answers entry (URL or host:port) into a container probe.
func probeFromTarget(t string, mustWork bool, idx int) Probe {
	kind := "fail"
	if mustWork {
		kind = "work"
	}
	p := Probe{ID: fmt.Sprintf("step8.container.answers.must-%s.%d", kind, idx+1), Source: SourceContainer, MustWork: mustWork,
		Timeout: DefaultProbeTimeout, Why: "listed in answers probes.must_" + kind}
	if u, err := url.Parse(t); err == nil && strings.Contains(t, "://") {
		if u.Scheme == "https" {
			port := u.Port()
			if port == "" {
				port = "443"
			}
			p.Kind, p.Target, p.Name = KindTLS, net.JoinHostPort(u.Hostname(), port), u.Hostname()
			return p
		}
		p.Kind, p.Target = KindHTTP, normalizeHTTP(t)
		return p
	}
	p.Kind, p.Target = KindTCP, t
	return p
}

// normalizeHTTP writes the port explicitly: http://10.0.0.1/ → http://10.0.0.1:80/.
func normalizeHTTP(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	return u.String()
}

// TelegramAPI is the name every OpenClaw deployment with the Telegram channel must reach.
const TelegramAPI = "api.telegram.org"

// DefaultProbes is the profile's Step 8 matrix for these answers, plus answers.probes. Host checks (UFW,
// DOCKER-USER, listeners, IPv6, sshd) are not probes; Verify adds them.
func DefaultProbes(a Answers) []Probe {
	var ps []Probe
	add := func(p Probe) {
		if p.Timeout == 0 {
			p.Timeout = DefaultProbeTimeout
		}
		ps = append(ps, p)
	}
	// From inside the container: the LAN gateway, another LAN host, a private range, the metadata address.
	gw, _ := lanHostN(a.LANCIDR, 1)
	lan2, _ := lanHostN(a.LANCIDR, 2)
	for _, t := range []struct{ id, host, why string }{
		{"lan-gateway", gw, "the LAN's gateway (router admin pages) is out of the agent's reach"},
		{"lan-host", lan2, "other LAN machines are out of the agent's reach"},
		{"private-10", "10.0.0.1", "private ranges beyond the LAN are out of reach"},
		{"metadata", "169.254.169.254", "the link-local metadata address is out of reach"},
	} {
		if t.host == "" {
			continue
		}
		add(Probe{ID: "step8.container.must-fail." + t.id, Source: SourceContainer, Kind: KindHTTP,
			Target: "http://" + net.JoinHostPort(t.host, "80") + "/", Why: t.why})
	}
	add(Probe{ID: "step8.container.must-work.telegram", Source: SourceContainer, Kind: KindTLS, Target: net.JoinHostPort(TelegramAPI, "443"),
		Name: TelegramAPI, MustWork: true, Why: "the Telegram API answers over HTTPS with a valid certificate"})
	for _, r := range a.Resolvers {
		add(Probe{ID: "step8.container.must-work.dns." + r, Source: SourceContainer, Kind: KindDNS, Target: net.JoinHostPort(r, "53"),
			Name: TelegramAPI, MustWork: true, Why: "the chosen resolver answers from inside the container"})
	}
	for i, t := range a.Probes.MustFail {
		add(probeFromTarget(t, false, i))
	}
	for i, t := range a.Probes.MustWork {
		add(probeFromTarget(t, true, i))
	}
	for i, c := range a.Probes.Container {
		if p, err := c.probe(i); err == nil { // Validate refused the others
			add(p)
		}
	}
	add(Probe{ID: "step8.container.listen.mdns", Source: SourceContainer, Kind: KindUDPListen, Target: "224.0.0.251:5353",
		Why: "shows what multicast (mDNS) reaches the container; OpenClaw needs none"})
	add(Probe{ID: "step8.container.listen.broadcast", Source: SourceContainer, Kind: KindUDPListen, Target: "0.0.0.0:138",
		Why: "shows what broadcast (NetBIOS datagrams) reaches the container; OpenClaw needs none"})

	// From the VM itself: the gateway answers on loopback, sshd offers keys only.
	add(Probe{ID: "step8.vm.gateway-loopback", Source: SourceVM, Kind: KindHTTP, MustWork: true,
		Target: "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(a.GatewayPort)) + "/",
		Why:    "the gateway is reachable on the VM's loopback (through an SSH tunnel for the operator)"})
	add(Probe{ID: "step8.vm.listen.mdns", Source: SourceVM, Kind: KindUDPListen, Target: "224.0.0.251:5353",
		Why: "shows what multicast (mDNS) reaches the VM; nothing here needs it"})
	return ps
}

// probeResult is what running one probe found.
type probeResult struct {
	Reached bool   // the target answered (TCP connected, HTTP answered, TLS verified, DNS resolved)
	Class   string // how it failed (system.Fail*), "" when reached
	Detail  string
	Took    time.Duration
}

// prober runs probes from one namespace.
type prober struct {
	h         *system.Host
	ns        system.NetNS
	resolvers []string // host:port, for names the probes must resolve inside ns
}

func (pr prober) dial(ctx context.Context, network, addr string, timeout time.Duration) (net.Conn, error) {
	return pr.h.DialNS(ctx, pr.ns, network, addr, timeout)
}

// resolver asks the given DNS servers, dialling them from inside the namespace.
func (pr prober) resolver(servers []string, timeout time.Duration) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var errs []error
		for _, s := range servers {
			c, err := pr.dial(ctx, network, s, timeout)
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
		}
		return nil, errors.Join(errs...)
	}}
}

func (pr prober) run(ctx context.Context, p Probe) probeResult {
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	var r probeResult
	var err error
	switch p.Kind {
	case KindTCP:
		var c net.Conn
		if c, err = pr.dial(ctx, "tcp", p.Target, p.Timeout); err == nil {
			r.Detail = "connected from " + c.LocalAddr().String()
			c.Close()
		}
	case KindHTTP:
		r.Detail, err = pr.httpGet(ctx, p.Target, p.Timeout)
	case KindTLS:
		r.Detail, err = pr.tlsHandshake(ctx, p, pr.resolvers)
	case KindDNS:
		var addrs []string
		addrs, err = pr.resolver([]string{p.Target}, p.Timeout).LookupHost(ctx, p.Name)
		err = dnsServerIs(err, p.Target)
		if err == nil {
			sort.Strings(addrs)
			r.Detail = p.Name + " → " + strings.Join(addrs, ", ")
		}
	case KindUDPListen:
		r.Detail, err = pr.listen(ctx, p)
	case KindSSHAuth:
		var ap system.SSHAuthProbe
		ap, err = pr.h.SSHProbeAuth(ctx, system.SSHTarget{Addr: p.Target, Timeout: p.Timeout}, p.Name)
		if err == nil {
			r.Detail = sshDescribeMethods(ap)
			if ap.NoneAccepted || !sshOnlyPublickey(ap.Methods) {
				err = fmt.Errorf("%w: offered %s", errOffersMore, r.Detail)
			}
		}
	default:
		err = fmt.Errorf("unknown probe kind %q", p.Kind)
	}
	r.Took = time.Since(t0)
	if err != nil {
		r.Class = system.ClassifyProbeError(err)
		if errors.Is(err, errNotHTTP) || errors.Is(err, errOffersMore) {
			r.Class = system.FailProtocol
		}
		r.Detail = probeErrDetail(err, p.Timeout)
		return r
	}
	r.Reached = true
	return r
}

var (
	errNotHTTP    = errors.New("connected, but the answer is not HTTP")
	errOffersMore = errors.New("the server offers more than publickey")
)

// probeErrDetail is the error in a few words, with the class's meaning for timeouts.
func probeErrDetail(err error, timeout time.Duration) string {
	switch system.ClassifyProbeError(err) {
	case system.FailDropped:
		return fmt.Sprintf("no answer within %s", timeout)
	case system.FailDryRun:
		return "dry run: not sent"
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && len(msg)-i < 80 {
		// "dial tcp 10.0.0.1:80: connect: connection refused" → keep the whole, it is short enough
		if len(msg) > 160 {
			msg = msg[i+2:]
		}
	}
	return msg
}

// dnsServerIs names the resolver the probe really asked in a DNS error: Go's resolver reports the host's
// configured server there, although the custom Dial sent the query elsewhere.
func dnsServerIs(err error, server string) error {
	var de *net.DNSError
	if errors.As(err, &de) {
		de.Server = server
	}
	return err
}

// httpGet sends one HTTP/1.0 GET and reads the status line: enough to prove an HTTP server answered,
// without following redirects or reading bodies.
func (pr prober) httpGet(ctx context.Context, raw string, timeout time.Duration) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" {
		return "", fmt.Errorf("%q is not an http:// URL", raw)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	c, err := pr.dial(ctx, "tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	path := u.RequestURI()
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: openclaw-harden\r\n\r\n", path, u.Host); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "HTTP/") {
		if err != nil {
			return "", fmt.Errorf("%w (%v)", errNotHTTP, err)
		}
		return "", fmt.Errorf("%w: %q", errNotHTTP, line)
	}
	return "answered " + line, nil
}

// tlsHandshake resolves the name through the given resolvers from inside the namespace (what the container
// itself would ask), connects and completes a TLS handshake that verifies the certificate for the name.
func (pr prober) tlsHandshake(ctx context.Context, p Probe, resolvers []string) (string, error) {
	host, port, err := net.SplitHostPort(p.Target)
	if err != nil {
		return "", err
	}
	ip := host
	if _, perr := netip.ParseAddr(host); perr != nil {
		if len(resolvers) == 0 {
			return "", errors.New("no resolver to look the name up with")
		}
		addrs, err := pr.resolver(resolvers, p.Timeout).LookupIP(ctx, "ip4", host)
		if err != nil {
			return "", dnsServerIs(err, strings.Join(resolvers, ", "))
		}
		ip = addrs[0].String()
	}
	c, err := pr.dial(ctx, "tcp", net.JoinHostPort(ip, port), p.Timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	tc := tls.Client(c, &tls.Config{ServerName: p.Name, MinVersion: tls.VersionTLS12})
	if err := tc.HandshakeContext(ctx); err != nil {
		return "", err
	}
	st := tc.ConnectionState()
	issuer := ""
	if len(st.PeerCertificates) > 0 {
		issuer = ", issuer " + st.PeerCertificates[0].Issuer.CommonName
	}
	return fmt.Sprintf("%s at %s: %s verified%s", p.Name, ip, tls.VersionName(st.Version), issuer), nil
}

// listenWindow is how long the UDP listeners listen: most of one probe timeout, so the matrix still ends
// in about one timeout.
func listenWindow(timeout time.Duration) time.Duration {
	w := timeout * 3 / 5
	if w > 3*time.Second {
		w = 3 * time.Second
	}
	return w
}

func (pr prober) listen(ctx context.Context, p Probe) (string, error) {
	host, portS, err := net.SplitHostPort(p.Target)
	if err != nil {
		return "", err
	}
	port, _ := strconv.Atoi(portS)
	group := ""
	if a, err := netip.ParseAddr(host); err == nil && a.IsMulticast() {
		group = host
	}
	c, err := pr.h.ListenUDPNS(pr.ns, group, port)
	if err != nil {
		return "", err
	}
	defer c.Close()
	window := listenWindow(p.Timeout)
	deadline := time.Now().Add(window)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.SetReadDeadline(deadline)
	from := map[string]int{}
	n := 0
	buf := make([]byte, 2048)
	for {
		_, src, err := c.ReadFromUDP(buf)
		if err != nil {
			break
		}
		n++
		from[src.IP.String()]++
	}
	if n == 0 {
		return fmt.Sprintf("listened %s: nothing arrived", window.Round(100*time.Millisecond)), nil
	}
	var srcs []string
	for s, k := range from {
		srcs = append(srcs, fmt.Sprintf("%s ×%d", s, k))
	}
	sort.Strings(srcs)
	return fmt.Sprintf("listened %s: %d datagram(s) from %s", window.Round(100*time.Millisecond), n, strings.Join(srcs, ", ")), nil
}

// probeCheck turns a probe and its result into a check.
func probeCheck(p Probe, r probeResult) Check {
	c := Check{ID: p.ID, Name: p.Describe(), Expect: p.Expect(), Source: string(p.Source), Target: p.Target,
		DurationMS: r.Took.Milliseconds()}
	switch {
	case r.Class == system.FailDryRun:
		c.Got, c.Reason = "not sent (dry run)", "dry run: the probe was listed, not sent"
	case p.Kind == KindUDPListen:
		c.OK = r.Reached
		c.Got = r.Detail
		if !r.Reached {
			c.Got = "could not listen"
			c.Reason = r.Detail
			if strings.Contains(r.Detail, "address already in use") {
				c.Reason = "something already listens on this port: " + r.Detail
			}
		}
	case p.MustWork:
		c.OK = r.Reached
		if r.Reached {
			c.Got = "works: " + r.Detail
		} else {
			c.Got = "fails: " + r.Class
			c.Reason = r.Detail
		}
	default:
		c.OK = !r.Reached && r.Class != system.FailProtocol
		switch {
		case r.Reached:
			c.Got = "reached: " + r.Detail
			c.Reason = "the target answered: nothing on the way blocked it"
		case r.Class == system.FailProtocol:
			c.Got = "reached (TCP connected): " + r.Detail
			c.Reason = "the connection was made: nothing on the way blocked it"
		default:
			c.Got = r.Class + ": " + r.Detail
		}
	}
	return c
}
