package codecserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/diditflow/diditflow/internal/config"
)

// The codec operations, as the last part of a call's path names them.
const (
	opDecode = "decode"
	opEncode = "encode"
)

// tokenVar names the variable of each operation's static tokens.
var tokenVar = map[string]string{opDecode: "CODEC_AUTH_TOKEN", opEncode: "CODEC_ENCODE_AUTH_TOKEN"}

// Errors of authenticate that answer 401; their text goes into the audit
// line, so none of them holds the token.
var (
	errNoToken      = errors.New("no bearer token")
	errUnknownToken = errors.New("token is none of CODEC_AUTH_TOKEN and CODEC_ENCODE_AUTH_TOKEN")
	errNotJWT       = errors.New("token is none of CODEC_AUTH_TOKEN and CODEC_ENCODE_AUTH_TOKEN, nor a JWT")
	errMalformedJWT = errors.New("oidc: malformed jwt")
	errNoSubject    = errors.New("oidc: token has no sub")
	errIDToken      = errors.New("oidc: an ID token, not an access token")
)

// forbiddenError is authenticate's answer to a caller it knows but who may
// not do what they ask: 403, the reason going into the audit line only.
type forbiddenError struct{ reason string }

func (e *forbiddenError) Error() string { return e.reason }

// caller is who made a call, as the audit line names them.
type caller struct {
	// name is the static token's name, the OIDC subject, or "anonymous".
	name string
	// method is how they authenticated: "token", "oidc" or "none".
	method string
}

var anonymous = caller{name: "anonymous", method: "none"}

// authenticator checks a call's bearer token against the static tokens and,
// when an issuer is configured, as an OIDC access token, and tells whether
// its bearer may do the call's operation.
type authenticator struct {
	tokens   []staticToken
	verifier *oidc.IDTokenVerifier // nil without CODEC_OIDC_ISSUER
	// claims are what an OIDC token must claim, by operation; an operation
	// without an entry is closed to OIDC tokens.
	claims map[string]claimRule
}

// staticToken keeps a token's SHA-256 rather than the token: hashing both
// sides gives ConstantTimeCompare equal lengths, so the comparison leaks
// neither the token nor its length.
type staticToken struct {
	name string
	op   string // the operation its list allows
	sum  [sha256.Size]byte
}

// newAuthenticator builds the authenticator of cfg. With an issuer it
// fetches the discovery document within ctx; the keys are fetched on the
// first token and again when a token names a key not seen yet.
func newAuthenticator(ctx context.Context, cfg config.CodecServer) (*authenticator, error) {
	decode, encode, err := cfg.Tokens()
	if err != nil {
		return nil, err
	}
	decodeClaims, encodeClaims, err := cfg.ClaimRequirements()
	if err != nil {
		return nil, err
	}
	a := &authenticator{claims: map[string]claimRule{}}
	add := func(op string, tokens []config.CodecToken) {
		for _, t := range tokens {
			a.tokens = append(a.tokens, staticToken{name: t.Name, op: op, sum: sha256.Sum256([]byte(t.Token))})
		}
	}
	add(opDecode, decode)
	add(opEncode, encode)
	if cfg.OIDCIssuer == "" {
		return a, nil
	}
	if cfg.OIDCAudience == "" {
		return nil, errors.New("CODEC_OIDC_AUDIENCE must be set with CODEC_OIDC_ISSUER")
	}
	a.claims[opDecode] = newClaimRule(decodeClaims)
	if len(encodeClaims) > 0 {
		a.claims[opEncode] = newClaimRule(encodeClaims)
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

// counts says how many static tokens each operation has, for the start
// line.
func (a *authenticator) counts() (decode, encode int) {
	for _, t := range a.tokens {
		if t.op == opDecode {
			decode++
		} else {
			encode++
		}
	}
	return decode, encode
}

// authenticate tells who sent r and whether they may do op, or why they are
// refused: a *forbiddenError for a caller it knows (403), another error for
// one it does not (401). With no authenticator every call is anonymous.
func (s *server) authenticate(r *http.Request, op string) (caller, error) {
	if s.auth == nil {
		return anonymous, nil
	}
	token, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return caller{}, errNoToken
	}
	if name, tokenOp, ok := s.auth.static(token); ok {
		c := caller{name: name, method: "token"}
		if tokenOp != op {
			return c, &forbiddenError{s.auth.wrongList(tokenOp, op)}
		}
		return c, nil
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
	c := caller{name: idToken.Subject, method: "oidc"}
	claims, err := tokenClaims(idToken)
	if err != nil {
		return c, err
	}
	if isIDToken(token, claims) {
		return c, errIDToken
	}
	rule, ok := s.auth.claims[op]
	if !ok {
		return c, &forbiddenError{"no CODEC_ENCODE_REQUIRE_CLAIM is set: /encode is closed to OIDC tokens"}
	}
	if missing := rule.missing(claims); missing != "" {
		return c, &forbiddenError{"missing claim " + missing}
	}
	return c, nil
}

// static returns the name of the static token equal to token, and the
// operation its list allows. It compares with every one of them, so the
// time taken does not tell which matched.
func (a *authenticator) static(token string) (name, op string, found bool) {
	sum := sha256.Sum256([]byte(token))
	for _, t := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 && !found {
			name, op, found = t.name, t.op, true
		}
	}
	return name, op, found
}

// wrongList is the reason a static token of tokenOp's list is refused op.
func (a *authenticator) wrongList(tokenOp, op string) string {
	reason := fmt.Sprintf("a %s may not %s: /%s takes a %s", tokenVar[tokenOp], op, op, tokenVar[op])
	if !slices.ContainsFunc(a.tokens, func(t staticToken) bool { return t.op == op }) {
		reason += ", and none is set"
	}
	return reason
}

// bearer returns the token of an "Authorization: Bearer <token>" header
// (the scheme in any case, as RFC 6750 allows).
func bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	token = strings.TrimSpace(token)
	return token, ok && strings.EqualFold(scheme, "Bearer") && token != ""
}

// tokenClaims returns the claims of a verified token, numbers kept as
// written so that "level=3" compares with the text of the claim.
func tokenClaims(t *oidc.IDToken) (map[string]any, error) {
	var raw json.RawMessage
	if err := t.Claims(&raw); err != nil {
		return nil, errors.New("oidc: the token's claims are not a JSON object")
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var claims map[string]any
	if err := d.Decode(&claims); err != nil {
		return nil, errors.New("oidc: the token's claims are not a JSON object")
	}
	return claims, nil
}

// isIDToken tells an OpenID Connect ID token from an access token, as far
// as the token says. An ID token is meant for the client that logged the
// user in (the Temporal UI hands it to the browser and sends it in
// Authorization-Extras), not as a credential for an API. RFC 9068 access
// tokens say at+jwt in their header; otherwise an ID token is marked by
// at_hash or c_hash, which OpenID Connect defines for ID tokens only (an
// access token cannot carry its own hash), or by Keycloak's typ claim "ID".
// ID tokens without any of these marks are told apart by their audience
// (the UI's client ID), which is why CODEC_OIDC_AUDIENCE must be the API's.
func isIDToken(token string, claims map[string]any) bool {
	// The header was signed with the payload, which Verify checked.
	header, err := base64.RawURLEncoding.DecodeString(token[:strings.IndexByte(token, '.')])
	var h struct {
		Typ string `json:"typ"`
	}
	if err == nil && json.Unmarshal(header, &h) == nil {
		if typ := strings.ToLower(h.Typ); typ == "at+jwt" || typ == "application/at+jwt" {
			return false
		}
	}
	_, atHash := claims["at_hash"]
	_, cHash := claims["c_hash"]
	typ, _ := claims["typ"].(string)
	return atHash || cHash || strings.EqualFold(typ, "ID")
}

// claimRule is what a token must claim to do one operation: every claim
// named, with one of the values given for it.
type claimRule []claimAlternatives

type claimAlternatives struct {
	name   string
	values []string
}

// newClaimRule groups reqs by claim, in the order the claims are first
// named.
func newClaimRule(reqs []config.ClaimRequirement) claimRule {
	var rule claimRule
	index := map[string]int{}
	for _, r := range reqs {
		i, ok := index[r.Name]
		if !ok {
			i = len(rule)
			index[r.Name] = i
			rule = append(rule, claimAlternatives{name: r.Name})
		}
		rule[i].values = append(rule[i].values, r.Value)
	}
	return rule
}

// missing returns the requirements claims does not meet, as they are
// configured ("groups=a or groups=b, email_verified=true"), or "" when it
// meets them all. It quotes the configuration, never the token's claims,
// which may be personal data.
func (rule claimRule) missing(claims map[string]any) string {
	var unmet []string
	for _, alt := range rule {
		v, ok := claimValue(claims, alt.name)
		if ok && slices.ContainsFunc(alt.values, func(want string) bool { return claimHolds(alt.name, v, want) }) {
			continue
		}
		entries := make([]string, len(alt.values))
		for i, want := range alt.values {
			entries[i] = alt.name + "=" + want
		}
		unmet = append(unmet, strings.Join(entries, " or "))
	}
	return strings.Join(unmet, ", ")
}

// claimValue finds the claim name: a top-level claim of that name (Auth0's
// namespaced claims have dots in theirs) or else a dotted path into nested
// objects (Keycloak's realm_access.roles).
func claimValue(claims map[string]any, name string) (any, bool) {
	if v, ok := claims[name]; ok {
		return v, true
	}
	var v any = claims
	for part := range strings.SplitSeq(name, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = obj[part]; !ok {
			return nil, false
		}
	}
	return v, true
}

// claimHolds reports whether the claim name, of value v, is want or, as a
// list, contains it. "scope" and "scp" as a string are space-separated
// scopes (RFC 8693, section 4.2).
func claimHolds(name string, v any, want string) bool {
	if s, ok := v.(string); ok && (name == "scope" || name == "scp") {
		return slices.Contains(strings.Fields(s), want)
	}
	if list, ok := v.([]any); ok {
		return slices.ContainsFunc(list, func(e any) bool { return scalarIs(e, want) })
	}
	return scalarIs(v, want)
}

// scalarIs reports whether v, a string, a boolean or a number, is written
// want; an object or a list is not.
func scalarIs(v any, want string) bool {
	switch v := v.(type) {
	case string:
		return v == want
	case bool:
		return strconv.FormatBool(v) == want
	case json.Number:
		return v.String() == want
	}
	return false
}
