package codecserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/diditflow/diditflow/internal/config"
)

// Errors of authenticate; their text goes into the audit line, so none of
// them holds the token.
var (
	errNoToken      = errors.New("no bearer token")
	errUnknownToken = errors.New("token is none of CODEC_AUTH_TOKEN")
	errNotJWT       = errors.New("token is none of CODEC_AUTH_TOKEN, nor a JWT")
	errMalformedJWT = errors.New("oidc: malformed jwt")
	errNoSubject    = errors.New("oidc: token has no sub")
)

// caller is who made a call, as the audit line names them.
type caller struct {
	// name is the static token's name, the OIDC subject, or "anonymous".
	name string
	// method is how they authenticated: "token", "oidc" or "none".
	method string
}

var anonymous = caller{name: "anonymous", method: "none"}

// authenticator checks a call's bearer token against the static tokens and,
// when an issuer is configured, as an OIDC access token.
type authenticator struct {
	tokens   []staticToken
	verifier *oidc.IDTokenVerifier // nil without CODEC_OIDC_ISSUER
}

// staticToken keeps a token's SHA-256 rather than the token: hashing both
// sides gives ConstantTimeCompare equal lengths, so the comparison leaks
// neither the token nor its length.
type staticToken struct {
	name string
	sum  [sha256.Size]byte
}

// newAuthenticator builds the authenticator of cfg. With an issuer it
// fetches the discovery document within ctx; the keys are fetched on the
// first token and again when a token names a key not seen yet.
func newAuthenticator(ctx context.Context, cfg config.CodecServer) (*authenticator, error) {
	tokens, err := cfg.Tokens()
	if err != nil {
		return nil, err
	}
	a := &authenticator{}
	for _, t := range tokens {
		a.tokens = append(a.tokens, staticToken{name: t.Name, sum: sha256.Sum256([]byte(t.Token))})
	}
	if cfg.OIDCIssuer == "" {
		return a, nil
	}
	if cfg.OIDCAudience == "" {
		return nil, errors.New("CODEC_OIDC_AUDIENCE must be set with CODEC_OIDC_ISSUER")
	}
	// The key set keeps this client for its later fetches: without a
	// timeout, a hung issuer would hold every OIDC call that needs new keys.
	client := &http.Client{Timeout: oidcDiscoveryTimeout}
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, client), cfg.OIDCIssuer)
	if err != nil {
		return nil, fmt.Errorf("OIDC discovery at CODEC_OIDC_ISSUER %s: %w", cfg.OIDCIssuer, err)
	}
	a.verifier = provider.Verifier(&oidc.Config{ClientID: cfg.OIDCAudience})
	return a, nil
}

// authenticate tells who sent r, or why they are refused; with no
// authenticator every call is anonymous.
func (s *server) authenticate(r *http.Request) (caller, error) {
	if s.auth == nil {
		return anonymous, nil
	}
	token, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return caller{}, errNoToken
	}
	if name, ok := s.auth.static(token); ok {
		return caller{name: name, method: "token"}, nil
	}
	if s.auth.verifier == nil {
		return caller{}, errUnknownToken
	}
	if strings.Count(token, ".") != 2 {
		return caller{}, errNotJWT
	}
	idToken, err := s.auth.verifier.Verify(r.Context(), token)
	if err != nil {
		// go-oidc's errors say what failed (expiry, audience, issuer,
		// signature) without the token, except a malformed one's, which
		// may quote a character of it.
		if strings.Contains(err.Error(), "malformed jwt") {
			return caller{}, errMalformedJWT
		}
		return caller{}, err
	}
	if idToken.Subject == "" {
		return caller{}, errNoSubject
	}
	return caller{name: idToken.Subject, method: "oidc"}, nil
}

// static returns the name of the static token equal to token. It compares
// with every one of them, so the time taken does not tell which matched.
func (a *authenticator) static(token string) (string, bool) {
	sum := sha256.Sum256([]byte(token))
	name, found := "", false
	for _, t := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 && !found {
			name, found = t.name, true
		}
	}
	return name, found
}

// bearer returns the token of an "Authorization: Bearer <token>" header
// (the scheme in any case, as RFC 6750 allows).
func bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	token = strings.TrimSpace(token)
	return token, ok && strings.EqualFold(scheme, "Bearer") && token != ""
}
