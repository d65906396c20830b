package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Breaker defaults: a handful of failures in a row is a dead server rather
// than bad luck, and half a minute is short next to Temporal's retry backoff.
const (
	DefaultBreakerThreshold   = 5
	DefaultBreakerOpenTimeout = 30 * time.Second
)

// BreakerOption configures WithBreaker and WithPosterBreaker.
type BreakerOption func(*breakerConfig)

type breakerConfig struct {
	threshold   uint32
	openTimeout time.Duration
	logger      *slog.Logger
}

// BreakerOpenTimeout sets how long the circuit stays open before one trial
// call is let through; the default is DefaultBreakerOpenTimeout.
// Non-positive values are ignored.
func BreakerOpenTimeout(d time.Duration) BreakerOption {
	return func(c *breakerConfig) {
		if d > 0 {
			c.openTimeout = d
		}
	}
}

// BreakerLogger sets where state changes are logged; the default is
// slog.Default().
func BreakerLogger(l *slog.Logger) BreakerOption {
	return func(c *breakerConfig) { c.logger = l }
}

// WithBreaker wraps m so that after consecutive transient failures it fails
// fast with ErrCircuitOpen instead of contacting the server, until the open
// timeout passes and a trial send succeeds. Permanent failures prove the
// server is answering, so they count as successes; cancellations by the caller
// are ignored.
func WithBreaker(m Mailer, name string, opts ...BreakerOption) Mailer {
	return &breakerMailer{next: m, breaker: newBreaker(name, opts)}
}

type breakerMailer struct {
	next    Mailer
	breaker *breaker
}

func (b *breakerMailer) Send(ctx context.Context, m Message) error {
	return b.breaker.do(func() error { return b.next.Send(ctx, m) })
}

// Poster posts a payload to a compliance endpoint; Callback implements it.
type Poster interface {
	Post(ctx context.Context, payload any) error
}

// WithPosterBreaker is WithBreaker for a Poster.
func WithPosterBreaker(p Poster, name string, opts ...BreakerOption) Poster {
	return &breakerPoster{next: p, breaker: newBreaker(name, opts)}
}

type breakerPoster struct {
	next    Poster
	breaker *breaker
}

func (b *breakerPoster) Post(ctx context.Context, payload any) error {
	return b.breaker.do(func() error { return b.next.Post(ctx, payload) })
}

// breaker holds the one classification of errors for every wrapped transport.
type breaker struct {
	name string
	cb   *gobreaker.CircuitBreaker[struct{}]
}

func newBreaker(name string, opts []BreakerOption) *breaker {
	cfg := breakerConfig{
		threshold:   DefaultBreakerThreshold,
		openTimeout: DefaultBreakerOpenTimeout,
		logger:      slog.Default(),
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	return &breaker{
		name: name,
		cb: gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
			Name:    name,
			Timeout: cfg.openTimeout,
			ReadyToTrip: func(c gobreaker.Counts) bool {
				return c.ConsecutiveFailures >= cfg.threshold
			},
			IsSuccessful: func(err error) bool {
				return err == nil || IsPermanent(err)
			},
			IsExcluded: func(err error) bool {
				return errors.Is(err, context.Canceled)
			},
			OnStateChange: func(name string, from, to gobreaker.State) {
				cfg.logger.Warn("notify: circuit breaker state changed",
					"breaker", name, "from", from.String(), "to", to.String())
			},
		}),
	}
}

func (b *breaker) do(call func() error) error {
	_, err := b.cb.Execute(func() (struct{}, error) { return struct{}{}, call() })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		// Nothing was attempted, so nothing was delivered.
		return fmt.Errorf("breaker %q: %w", b.name, notDelivered(ErrCircuitOpen))
	}
	return err
}
