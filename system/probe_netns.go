package system

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/vishvananda/netns"
)

// NetNS names a network namespace to probe from: a container's (/proc/PID/ns/net) or a named one
// (/run/netns/NAME, tests). The zero value is this host's own namespace.
type NetNS struct {
	Path  string // "/proc/4242/ns/net"; "" is the host
	Label string // how it is named in records: "container openclaw-gateway (pid 4242)"
}

// ContainerNetNS is the namespace of the process with this PID (from `docker inspect -f '{{.State.Pid}}'`).
func ContainerNetNS(pid int, label string) NetNS {
	return NetNS{Path: "/proc/" + strconv.Itoa(pid) + "/ns/net", Label: label}
}

// Host reports the host's own namespace.
func (n NetNS) Host() bool { return n.Path == "" }

func (n NetNS) String() string {
	switch {
	case n.Label != "":
		return n.Label
	case n.Path == "":
		return "this host"
	}
	return n.Path
}

// inNetNS runs fn on a locked OS thread switched into ns; sockets fn creates belong to ns for their whole
// life, whatever thread later reads or writes them. The thread is switched back before it is released; if
// that fails the thread stays locked and dies with its goroutine, so no other goroutine ever runs in ns.
func inNetNS(ns NetNS, fn func() error) error {
	if ns.Host() {
		return fn()
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("reading this thread's network namespace: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromPath(ns.Path)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("opening the network namespace of %s: %w", ns, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering the network namespace of %s: %w", ns, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: the runtime ends it with this goroutine instead of reusing it.
		return errors.Join(ferr, fmt.Errorf("leaving the network namespace of %s: %w", ns, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// DialNS is Dial from inside ns: the socket is created there, so the connection leaves through that
// namespace's interfaces, routes and firewall (a container's eth0 and Docker's bridge). The dry-run guard is
// the same as Dial's: in dry-run only loopback targets (ns's own loopback) are contacted; the rest is recorded
// as "would probe … from …" and refused.
func (h *Host) DialNS(ctx context.Context, ns NetNS, network, address string, timeout time.Duration) (net.Conn, error) {
	if ns.Host() {
		return h.Dial(ctx, network, address, timeout)
	}
	if h.DryRun && !isLoopback(address) {
		h.record("would probe: %s %s from %s", network, address, ns)
		return nil, fmt.Errorf("%s %s from %s: %w", network, address, ns, ErrDryRun)
	}
	var conn net.Conn
	err := inNetNS(ns, func() error {
		d := net.Dialer{Timeout: timeout}
		var err error
		conn, err = d.DialContext(ctx, network, address)
		return err
	})
	return conn, err
}

// ListenUDPNS opens a UDP socket bound to port on every address of ns and, when group is set (224.0.0.251
// for mDNS), joins that multicast group on ns's interfaces. Listening sends nothing, but in dry-run it is
// still refused and recorded: it takes a port inside someone else's namespace.
func (h *Host) ListenUDPNS(ns NetNS, group string, port int) (*net.UDPConn, error) {
	what := fmt.Sprintf("udp port %d", port)
	if group != "" {
		what += " (multicast " + group + ")"
	}
	if h.DryRun {
		h.record("would listen: %s in %s", what, ns)
		return nil, fmt.Errorf("listen %s in %s: %w", what, ns, ErrDryRun)
	}
	var c *net.UDPConn
	err := inNetNS(ns, func() error {
		var err error
		if group != "" {
			gaddr := &net.UDPAddr{IP: net.ParseIP(group), Port: port}
			c, err = listenMulticast(gaddr)
			return err
		}
		c, err = net.ListenUDP("udp4", &net.UDPAddr{Port: port})
		return err
	})
	return c, err
}

// listenMulticast joins the group on every up, multicast-capable interface except loopback; with none, it
// listens on the port alone (broadcast and unicast still arrive).
func listenMulticast(g *net.UDPAddr) (*net.UDPConn, error) {
	ifs, _ := net.Interfaces()
	var first *net.UDPConn
	var err error
	for i := range ifs {
		ifi := &ifs[i]
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagMulticast == 0 || ifi.Flags&net.FlagLoopback != 0 {
			continue
		}
		if first == nil {
			first, err = net.ListenMulticastUDP("udp4", ifi, g)
			if err != nil {
				return nil, err
			}
		}
	}
	if first != nil {
		return first, nil
	}
	return net.ListenUDP("udp4", &net.UDPAddr{Port: g.Port})
}

// ReadProcNet reads /proc/PID/net/FILE ("udp", "tcp6"): the socket table of that process's network namespace.
func (h *Host) ReadProcNet(pid int, file string) ([]byte, error) {
	return os.ReadFile(h.Path("/proc/" + strconv.Itoa(pid) + "/net/" + file))
}
