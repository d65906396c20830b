package notify

import (
	"context"
	"net"
)

// SetDial replaces how s opens connections, so tests can count dials.
func SetDial(s *SMTP, dial func(ctx context.Context, network, addr string) (net.Conn, error)) {
	s.dial = dial
}
