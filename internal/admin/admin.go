// Package admin holds what diditflow-admin's procedures share: Didit's
// failures explained to the operator running them, prose wrapped for a
// terminal, and the Temporal connection the worker uses. The procedures
// are its subpackages: rotation (rotate-secret), erasure (erase) and cases
// (cases, case, resolve).
package admin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/temporalclient"
)

// ErrNoAPIKey is the answer to a step that calls Didit run without
// DIDIT_API_KEY.
var ErrNoAPIKey = errors.New("DIDIT_API_KEY is not set: this step calls Didit's API. Set it to an API key of the " +
	"application (Didit console, API & Webhooks) that may read and write webhooks")

// DiditClient is the client of Didit's API at url with key, or why there is
// none (ErrNoAPIKey, or a URL that is not one).
func DiditClient(url, key string) (*api.Client, error) {
	key = strings.TrimSpace(key)
	if key == "" {
		return nil, ErrNoAPIKey
	}
	c, err := api.New(api.Config{BaseURL: url, Key: key})
	if err != nil {
		return nil, fmt.Errorf("DIDIT_API_URL %q: must be an absolute http(s) URL such as %s", url, api.DefaultBaseURL)
	}
	return c, nil
}

// DiditFailure explains a failed call to Didit: what was being done, what
// Didit's answer means (SPEC §4.4) and what to do about it. The client's
// own text, which names the call, kind and status and never the key or the
// body, ends the message.
func DiditFailure(doing string, err error) error {
	var e *api.Error
	switch {
	case errors.Is(err, api.ErrNoKey):
		return ErrNoAPIKey
	case !errors.As(err, &e):
		return fmt.Errorf("%s: %w", doing, err)
	}
	var why string
	switch e.Kind {
	case api.KindCredentials:
		why = fmt.Sprintf("Didit refused DIDIT_API_KEY (%d): ", e.Status)
		if e.Status == http.StatusUnauthorized {
			why += "the key is missing, wrong, revoked or expired"
		} else {
			why += "the key may not make this call (a scoped key needs to read and write webhooks), " +
				"or this machine's IP address is not on its allow-list"
		}
	case api.KindNotFound:
		why = fmt.Sprintf("Didit answered %d: it does not exist, or it is outside DIDIT_API_KEY's scope", e.Status)
	case api.KindRateLimited:
		why = "Didit is rate-limiting DIDIT_API_KEY (429); try again"
		if e.RetryAfter > 0 {
			why += " in " + e.RetryAfter.String()
		} else {
			why += " in a minute"
		}
	case api.KindServer:
		if e.Status != 0 {
			why = fmt.Sprintf("Didit failed (%d); try again in a few minutes", e.Status)
		} else {
			why = "Didit did not answer; check DIDIT_API_URL and the network, then try again"
		}
	case api.KindMalformed:
		why = "Didit's answer is not the JSON its API documents; check that DIDIT_API_URL is Didit's API"
	default:
		why = fmt.Sprintf("Didit rejected the request (%d)", e.Status)
	}
	return fmt.Errorf("%s: %s [%w]", doing, why, err)
}

// TemporalTimeout bounds each call to Temporal, the dial included.
const TemporalTimeout = 15 * time.Second

// Temporal is a connection to the worker's Temporal.
type Temporal struct {
	Client client.Client
	// Namespace is the namespace the client works in.
	Namespace string
	// Where names the namespace and the server, for messages.
	Where string
}

// DialTemporal connects to Temporal as the worker does (internal/temporalclient:
// the TEMPORAL_* variables, the payload codec enc configures), as Identity:
// what Temporal records of each call names the person who ran it.
func DialTemporal(ctx context.Context, log *slog.Logger, enc config.Encryption) (Temporal, error) {
	opts, err := temporalclient.Options(log, enc)
	if err != nil {
		return Temporal{}, err
	}
	opts.Identity = Identity()
	namespace := opts.Namespace
	if namespace == "" {
		namespace = client.DefaultNamespace
	}
	dialCtx, cancel := context.WithTimeout(ctx, TemporalTimeout)
	defer cancel()
	c, err := client.DialContext(dialCtx, opts)
	if err != nil {
		return Temporal{}, fmt.Errorf("dial temporal at %s: %w (set TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE as for the worker)", opts.HostPort, err)
	}
	return Temporal{Client: c, Namespace: namespace, Where: fmt.Sprintf("Temporal namespace %q at %s", namespace, opts.HostPort)}, nil
}

// Identity is the Temporal client identity of diditflow-admin:
// "diditflow-admin:<user>@<host>", as the Temporal CLI's is
// "temporal-cli:<user>@<host>". The resolve Update records it beside the
// reviewer the operator names.
func Identity() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = "unknown"
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return "diditflow-admin:" + name + "@" + host
}

// TextWidth is where WriteWrapped wraps prose; commands and secrets are
// never wrapped.
const TextWidth = 78

// WriteWrapped writes text wrapped at TextWidth, its first line after first
// and the others after indent.
func WriteWrapped(b *bufio.Writer, text, first, indent string) {
	line, prefix := "", first
	for _, word := range strings.Fields(text) {
		if line != "" && len(prefix)+len(line)+1+len(word) > TextWidth {
			b.WriteString(prefix + line + "\n")
			line, prefix = "", indent
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	b.WriteString(prefix + line + "\n")
}

// Plural is n what, with an s unless n is 1.
func Plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
