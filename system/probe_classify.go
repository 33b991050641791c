package system

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"syscall"
)

// How a probe failed. A must-fail probe passes with any of them; the class says what stopped it.
const (
	FailDropped  = "dropped"  // no answer within the timeout: a DROP rule, or nothing at that address
	FailRejected = "rejected" // connection refused (a TCP RST or an ICMP port unreachable)
	FailNoRoute  = "no route" // network or host unreachable: no route, no ARP answer, or an ICMP reject
	FailBlocked  = "blocked"  // refused by this machine's own firewall on the way out (EPERM)
	FailDNS      = "dns"      // the name did not resolve (NXDOMAIN, SERVFAIL, or the resolver did not answer)
	FailTLS      = "tls"      // TCP worked, the TLS handshake or certificate did not
	FailProtocol = "protocol" // connected, but the answer was not what the protocol expects
	FailDryRun   = "not sent" // dry-run: the probe was recorded, not sent
	FailOther    = "error"    // anything else; the detail says what
)

// ClassifyProbeError says how a probe failed, as one of the Fail* classes. nil is "".
func ClassifyProbeError(err error) string {
	if err == nil {
		return ""
	}
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var recErr tls.RecordHeaderError
	var alert tls.AlertError
	switch {
	case errors.Is(err, ErrDryRun):
		return FailDryRun
	case errors.As(err, &dnsErr):
		return FailDNS
	case errors.Is(err, syscall.ECONNREFUSED):
		return FailRejected
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EHOSTDOWN):
		return FailNoRoute
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return FailBlocked
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr),
		errors.As(err, &recErr), errors.As(err, &alert):
		return FailTLS
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), isTimeout(err):
		return FailDropped
	}
	return FailOther
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
