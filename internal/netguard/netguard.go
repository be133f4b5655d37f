// Package netguard keeps the server's outbound HTTP requests (to MCP
// servers, to the pages fetch_webpage reads) off internal addresses.
//
// Guarantees, unless Guard.AllowPrivate:
//   - Check refuses a URL that is not http(s), names an internal host
//     (localhost, metadata.google.internal, *.local, *.localdomain,
//     *.home.arpa, *.svc, *.cluster.local, as Letta refuses them) or is a
//     literal non-public IP address.
//   - Dialer refuses to connect to a non-public address (loopback,
//     private, link-local, unspecified, multicast), so a public name
//     cannot resolve, or later re-resolve, inside.
//
// Every refusal names the operator flag that allows it (Guard.Flag).
package netguard

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// blockedHosts and blockedSuffixes are host names of internal services.
var (
	blockedHosts    = []string{"localhost", "metadata.google.internal"}
	blockedSuffixes = []string{".local", ".localdomain", ".home.arpa", ".svc", ".cluster.local"}
)

// Guard decides which addresses outbound requests may reach.
type Guard struct {
	// AllowPrivate lets requests reach loopback, private and internal
	// addresses (an operator's explicit choice, e.g. for local servers).
	AllowPrivate bool
	// Flag is the operator flag that sets AllowPrivate, named in refusals.
	Flag string
}

// Check refuses a URL that is not http(s) with a host, or (unless
// AllowPrivate) that names an internal host or a non-public IP address.
// field names the URL in the error ("server_url", "url").
func (g Guard) Check(field, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s must be an http:// or https:// URL with a host, got: %q", field, raw)
	}
	if g.AllowPrivate {
		return u, nil
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	for _, b := range blockedHosts {
		if host == b {
			return nil, fmt.Errorf("blocked internal hostname: %s (%s allows it)", u.Hostname(), g.Flag)
		}
	}
	for _, b := range blockedSuffixes {
		if strings.HasSuffix(host, b) {
			return nil, fmt.Errorf("blocked internal hostname: %s (%s allows it)", u.Hostname(), g.Flag)
		}
	}
	if ip, err := netip.ParseAddr(host); err == nil && !Public(ip) {
		return nil, fmt.Errorf("non-public IP not allowed: %s (%s allows it)", u.Hostname(), g.Flag)
	}
	return u, nil
}

// Public reports whether ip is a public unicast address.
func Public(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast()
}

// Dialer returns a dialer that (unless AllowPrivate) refuses to connect to
// a non-public address, whatever name led there.
func (g Guard) Dialer() *net.Dialer {
	d := &net.Dialer{}
	if !g.AllowPrivate {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !Public(ap.Addr()) {
				return fmt.Errorf("refused to connect to the non-public address %s (%s allows it)", address, g.Flag)
			}
			return nil
		}
	}
	return d
}
