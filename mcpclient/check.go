package mcpclient

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"

	"github.com/kelpie/kelpie/schema"
)

// blockedHosts and blockedSuffixes are host names that name internal
// services, refused as Letta refuses them (validate_mcp_server_url).
var (
	blockedHosts    = []string{"localhost", "metadata.google.internal"}
	blockedSuffixes = []string{".local", ".localdomain", ".home.arpa", ".svc", ".cluster.local"}
)

// Check refuses a stdio server when they are disabled, and a URL that is
// not http(s) or (unless AllowPrivate) names an internal host or a
// non-public address. The dialer also refuses non-public addresses a
// public name resolves to, so a name cannot be pointed inside later.
func (c *Client) Check(s *schema.MCPServer) error {
	if s.Type == schema.MCPStdio {
		if c.cfg.DisableStdio {
			return ErrStdioDisabled
		}
		return nil
	}
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("server_url must be an http:// or https:// URL with a host, got: %q", s.URL)
	}
	if c.cfg.AllowPrivate {
		return nil
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	for _, b := range blockedHosts {
		if host == b {
			return fmt.Errorf("blocked internal hostname: %s (kelpie serve --mcp-allow-private-urls allows it)", u.Hostname())
		}
	}
	for _, b := range blockedSuffixes {
		if strings.HasSuffix(host, b) {
			return fmt.Errorf("blocked internal hostname: %s (kelpie serve --mcp-allow-private-urls allows it)", u.Hostname())
		}
	}
	if ip, err := netip.ParseAddr(host); err == nil && !public(ip) {
		return fmt.Errorf("non-public IP not allowed: %s (kelpie serve --mcp-allow-private-urls allows it)", u.Hostname())
	}
	return nil
}

// public reports whether ip is a public unicast address.
func public(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast()
}

// dialer connects to MCP servers, refusing non-public addresses unless
// allowed.
func (c *Client) dialer() *net.Dialer {
	d := &net.Dialer{}
	if !c.cfg.AllowPrivate {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !public(ap.Addr()) {
				return fmt.Errorf("refused to connect to the non-public address %s (kelpie serve --mcp-allow-private-urls allows it)", address)
			}
			return nil
		}
	}
	return d
}

func (c *Client) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return c.dialer().DialContext(ctx, network, addr)
}
