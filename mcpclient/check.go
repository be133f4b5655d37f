package mcpclient

import (
	"context"
	"net"

	"github.com/kelpie/kelpie/internal/netguard"
	"github.com/kelpie/kelpie/schema"
)

// guard keeps HTTP servers off internal addresses unless AllowPrivate.
func (c *Client) guard() netguard.Guard {
	return netguard.Guard{AllowPrivate: c.cfg.AllowPrivate, Flag: "kelpie serve --mcp-allow-private-urls"}
}

// Check refuses a stdio server when they are disabled, and a URL that is
// not http(s) or (unless AllowPrivate) names an internal host or a
// non-public address (see package netguard). The dialer also refuses
// non-public addresses a public name resolves to, so a name cannot be
// pointed inside later.
func (c *Client) Check(s *schema.MCPServer) error {
	if s.Type == schema.MCPStdio {
		if c.cfg.DisableStdio {
			return ErrStdioDisabled
		}
		return nil
	}
	_, err := c.guard().Check("server_url", s.URL)
	return err
}

func (c *Client) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return c.guard().Dialer().DialContext(ctx, network, addr)
}
