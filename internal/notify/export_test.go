package notify

import (
	"context"
	"crypto/tls"
	"net"
)

// SetDial replaces how s opens connections, so tests can count dials.
func SetDial(s *SMTP, dial func(ctx context.Context, network, addr string) (net.Conn, error)) {
	s.dial = dial
}

// WithTLSConfig sets the TLS configuration for smtps:// and STARTTLS, so
// tests can trust their server's certificate. ServerName defaults to the
// URL's host.
func WithTLSConfig(cfg *tls.Config) SMTPOption {
	return func(s *SMTP) { s.tlsConfig = cfg }
}

// BreakerThreshold sets how many consecutive transient failures open the
// circuit; the default is DefaultBreakerThreshold, and 0 counts as 1.
func BreakerThreshold(n uint32) BreakerOption {
	return func(c *breakerConfig) { c.threshold = max(n, 1) }
}
