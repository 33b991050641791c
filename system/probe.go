package system

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Dial opens a connection for a probe. In dry-run mode nothing is sent to another host: the probe is
// recorded as "would probe" and ErrDryRun is returned; only loopback targets are contacted.
func (h *Host) Dial(ctx context.Context, network, address string, timeout time.Duration) (net.Conn, error) {
	if h.DryRun && !isLoopback(address) {
		h.record("would probe: %s %s", network, address)
		return nil, fmt.Errorf("%s %s: %w", network, address, ErrDryRun)
	}
	d := net.Dialer{Timeout: timeout}
	return d.DialContext(ctx, network, address)
}

func isLoopback(address string) bool {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		host = address
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
