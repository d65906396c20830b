package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strings"
	"unicode"

	"github.com/kelseyhightower/envconfig"
)

// CodecServer configures the codec server (cmd/codec-server, served by
// internal/codecserver): the HTTP endpoint through which the Temporal UI and
// CLI decode the payloads internal/codec encrypted. Whoever reaches it reads
// decrypted personal data, so it listens on loopback by default and, off
// loopback, refuses to start without auth unless Insecure is set.
type CodecServer struct {
	// Addr is where the codec server listens.
	Addr string `envconfig:"CODEC_ADDR" default:"127.0.0.1:8081"`
	// AuthTokens are the static bearer tokens that may decode, those of the
	// CLI (--codec-auth "Bearer <token>") and of automation: each
	// "name:token", the name going into the audit log, or a bare token,
	// named "static". Several may be live at once, for a rotation. Print
	// shows only how many there are.
	AuthTokens []string `envconfig:"CODEC_AUTH_TOKEN" secret:"true"`
	// EncodeAuthTokens are the static bearer tokens that may encode, in the
	// same form. Encoding makes payloads the workers trust as their own
	// (a signal's input, a decision), so reading histories does not grant
	// it: no token is in both lists, and without one /encode is closed to
	// static tokens.
	EncodeAuthTokens []string `envconfig:"CODEC_ENCODE_AUTH_TOKEN" secret:"true"`
	// OIDCIssuer, when set, also accepts the UI user's own OIDC access token
	// (the UI's codec passAccessToken), verified against the issuer's keys.
	OIDCIssuer string `envconfig:"CODEC_OIDC_ISSUER"`
	// OIDCAudience is the audience those tokens must carry; required with
	// OIDCIssuer.
	OIDCAudience string `envconfig:"CODEC_OIDC_AUDIENCE"`
	// DecodeRequireClaims authorise OIDC tokens to decode: "claim=value"
	// entries, each claim named must hold one of the values given for it
	// (see ClaimRequirement). Required with OIDCIssuer: every user of an
	// issuer is not everyone who may read personal data.
	DecodeRequireClaims []string `envconfig:"CODEC_DECODE_REQUIRE_CLAIM"`
	// EncodeRequireClaims authorise OIDC tokens to encode, as
	// DecodeRequireClaims do to decode; without them /encode is closed to
	// OIDC tokens.
	EncodeRequireClaims []string `envconfig:"CODEC_ENCODE_REQUIRE_CLAIM"`
	// Insecure lets the server start off loopback with no auth at all, for a
	// local docker-compose where the UI reaches it across containers.
	Insecure bool `envconfig:"CODEC_INSECURE" default:"false"`
	// CORSOrigins are the browser origins (scheme://host[:port]) of the
	// Temporal UIs allowed to call the server; the default is the dev
	// server's UI. Empty turns CORS off, which leaves only the CLI.
	CORSOrigins []string `envconfig:"CODEC_CORS_ORIGINS" default:"http://localhost:8233,http://127.0.0.1:8233"`
	// MaxBodyBytes caps a request's body; larger ones get 413. Temporal caps
	// a payload at 2 MiB, which base64 makes 2.7 MiB.
	MaxBodyBytes int64 `envconfig:"CODEC_MAX_BODY_BYTES" default:"4194304"`
	Encryption   Encryption
	Log          Log
}

// CodecToken is one static bearer token of CODEC_AUTH_TOKEN. Its String and
// the logs show only its name.
type CodecToken struct {
	// Name identifies the caller in the audit log.
	Name string
	// Token is the secret the caller sends as "Authorization: Bearer <token>".
	Token string
}

// String names the token without showing it, so that printing one by
// mistake leaks nothing.
func (t CodecToken) String() string { return t.Name + ":<hidden>" }

// LogValue logs the token's name alone.
func (t CodecToken) LogValue() slog.Value { return slog.StringValue(t.String()) }

// ClaimRequirement is one entry of CODEC_DECODE_REQUIRE_CLAIM or
// CODEC_ENCODE_REQUIRE_CLAIM, "claim=value": the token's claim Name equals
// Value, or, when the claim is a list (groups, roles), contains it; "scope"
// and "scp" given as one string are its space-separated scopes (RFC 8693).
// Name is a top-level claim or, when there is none of that name, a dotted
// path into nested ones (Keycloak's realm_access.roles). Entries naming the
// same claim are alternatives; entries naming different claims must all
// hold.
type ClaimRequirement struct {
	Name  string
	Value string
}

// String is the entry as it is written: claim=value.
func (r ClaimRequirement) String() string { return r.Name + "=" + r.Value }

// CodecTokenMinLength is the shortest static token accepted: 16 characters
// of a generated token (openssl rand -hex 32 gives 64) are out of guessing
// range, a word or a PIN is not.
const CodecTokenMinLength = 16

// StaticCodecTokenName names a token given without a name.
const StaticCodecTokenName = "static"

var codecTokenName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// LoadCodecServer reads the codec server's settings and checks them.
func LoadCodecServer() (CodecServer, error) {
	c, err := ReadCodecServer()
	if err != nil {
		return CodecServer{}, err
	}
	return c, c.validate()
}

// ReadCodecServer reads the codec server's settings as LoadCodecServer does,
// blank tokens and origins dropped, but does not check them.
func ReadCodecServer() (CodecServer, error) {
	var c CodecServer
	if err := envconfig.Process("", &c); err != nil {
		return CodecServer{}, fmt.Errorf("config: %w", err)
	}
	c.AuthTokens = trimAll(c.AuthTokens)
	c.EncodeAuthTokens = trimAll(c.EncodeAuthTokens)
	c.DecodeRequireClaims = trimAll(c.DecodeRequireClaims)
	c.EncodeRequireClaims = trimAll(c.EncodeRequireClaims)
	c.CORSOrigins = trimAll(c.CORSOrigins)
	c.OIDCIssuer = strings.TrimSpace(c.OIDCIssuer)
	c.OIDCAudience = strings.TrimSpace(c.OIDCAudience)
	return c, nil
}

// trimAll trims each of list and drops the blank ones, in place.
func trimAll(list []string) []string {
	kept := list[:0]
	for _, s := range list {
		if s = strings.TrimSpace(s); s != "" {
			kept = append(kept, s)
		}
	}
	return kept
}

// Tokens parses AuthTokens, the tokens that decode, and EncodeAuthTokens,
// those that encode. Errors name the entry by its variable, its position
// and its name, never its secret.
func (c CodecServer) Tokens() (decode, encode []CodecToken, err error) {
	if decode, err = parseCodecTokens("CODEC_AUTH_TOKEN", c.AuthTokens); err != nil {
		return nil, nil, err
	}
	if encode, err = parseCodecTokens("CODEC_ENCODE_AUTH_TOKEN", c.EncodeAuthTokens); err != nil {
		return nil, nil, err
	}
	for i, e := range encode {
		for _, d := range decode {
			if e.Token == d.Token {
				return nil, nil, fmt.Errorf("CODEC_ENCODE_AUTH_TOKEN entry %d (%s) is also in CODEC_AUTH_TOKEN (%s): "+
					"a token that may read histories must not make payloads the workers trust; give each its own token", i+1, e.Name, d.Name)
			}
		}
	}
	return decode, encode, nil
}

// parseCodecTokens parses the entries of the token list variable name.
func parseCodecTokens(name string, entries []string) ([]CodecToken, error) {
	tokens := make([]CodecToken, 0, len(entries))
	seen := map[string]bool{}
	for i, entry := range entries {
		t := CodecToken{Name: StaticCodecTokenName, Token: strings.TrimSpace(entry)}
		if tokenName, token, ok := strings.Cut(entry, ":"); ok {
			t = CodecToken{Name: strings.TrimSpace(tokenName), Token: strings.TrimSpace(token)}
			if !codecTokenName.MatchString(t.Name) {
				return nil, fmt.Errorf("%s entry %d: the name before ':' must be 1 to 64 letters, digits, '.', '_' or '-'", name, i+1)
			}
		}
		if len(t.Token) < CodecTokenMinLength {
			return nil, fmt.Errorf("%s entry %d (%s): the token is %d characters, want at least %d (e.g. openssl rand -hex 32)",
				name, i+1, t.Name, len(t.Token), CodecTokenMinLength)
		}
		if seen[t.Token] {
			return nil, fmt.Errorf("%s entry %d (%s): the same token is listed twice", name, i+1, t.Name)
		}
		seen[t.Token] = true
		tokens = append(tokens, t)
	}
	return tokens, nil
}

// ClaimRequirements parses DecodeRequireClaims and EncodeRequireClaims. It
// refuses an issuer without a decode requirement, since every token of an
// issuer for the audience would then read every history, and requirements
// without an issuer, which nothing would check.
func (c CodecServer) ClaimRequirements() (decode, encode []ClaimRequirement, err error) {
	if decode, err = parseClaimRequirements("CODEC_DECODE_REQUIRE_CLAIM", c.DecodeRequireClaims); err != nil {
		return nil, nil, err
	}
	if encode, err = parseClaimRequirements("CODEC_ENCODE_REQUIRE_CLAIM", c.EncodeRequireClaims); err != nil {
		return nil, nil, err
	}
	switch {
	case c.OIDCIssuer == "" && len(decode)+len(encode) > 0:
		return nil, nil, errors.New("CODEC_DECODE_REQUIRE_CLAIM and CODEC_ENCODE_REQUIRE_CLAIM apply to OIDC tokens, " +
			"but CODEC_OIDC_ISSUER is not set: set the issuer too, or drop them")
	case c.OIDCIssuer != "" && len(decode) == 0:
		return nil, nil, errors.New("CODEC_DECODE_REQUIRE_CLAIM must be set with CODEC_OIDC_ISSUER: the claim that lets a user read " +
			"decrypted histories, e.g. groups=kyc-ops (aud=<CODEC_OIDC_AUDIENCE> lets in every token for the audience)")
	}
	return decode, encode, nil
}

// parseClaimRequirements parses the claim=value entries of the variable
// name.
func parseClaimRequirements(name string, entries []string) ([]ClaimRequirement, error) {
	reqs := make([]ClaimRequirement, 0, len(entries))
	for i, entry := range entries {
		claim, value, ok := strings.Cut(entry, "=")
		r := ClaimRequirement{Name: strings.TrimSpace(claim), Value: strings.TrimSpace(value)}
		if !ok || r.Name == "" || r.Value == "" || strings.ContainsFunc(r.Name, unicode.IsSpace) {
			return nil, fmt.Errorf("%s entry %d: %q is not claim=value, e.g. groups=kyc-ops", name, i+1, entry)
		}
		reqs = append(reqs, r)
	}
	return reqs, nil
}

// Origins returns CORSOrigins in the form browsers send in Origin (lower
// case, no trailing slash), or an error naming the first that is not an
// origin.
func (c CodecServer) Origins() ([]string, error) {
	origins := make([]string, 0, len(c.CORSOrigins))
	for _, o := range c.CORSOrigins {
		if o == "*" {
			return nil, errors.New("CODEC_CORS_ORIGINS must list origins, not \"*\": the UI sends credentials, which browsers refuse to send to \"*\"")
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("CODEC_CORS_ORIGINS: %q is not an origin, want scheme://host[:port] such as http://localhost:8233", o)
		}
		origins = append(origins, strings.ToLower(u.Scheme+"://"+u.Host))
	}
	return origins, nil
}

// Loopback reports whether Addr listens on loopback only: its host is
// "localhost" or a loopback IP. An empty host (":8081") listens on every
// interface, so it is not.
func (c CodecServer) Loopback() bool {
	host, _, err := net.SplitHostPort(c.Addr)
	return err == nil && isLoopbackHost(host)
}

// AuthConfigured reports whether callers must authenticate: a static token
// or an OIDC issuer is set.
func (c CodecServer) AuthConfigured() bool {
	return len(c.AuthTokens) > 0 || len(c.EncodeAuthTokens) > 0 || c.OIDCIssuer != ""
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c CodecServer) validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("CODEC_ADDR must be host:port, got %q", c.Addr))
	}
	if _, _, err := c.Tokens(); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := c.ClaimRequirements(); err != nil {
		errs = append(errs, err)
	}
	switch {
	case c.OIDCIssuer == "" && c.OIDCAudience != "":
		errs = append(errs, errors.New("CODEC_OIDC_AUDIENCE is set but CODEC_OIDC_ISSUER is not: set the issuer too, or drop the audience"))
	case c.OIDCIssuer != "":
		if c.OIDCAudience == "" {
			errs = append(errs, errors.New("CODEC_OIDC_AUDIENCE must be set with CODEC_OIDC_ISSUER: the audience the UI's access tokens carry"))
		}
		// Over plain HTTP anyone on the path could serve their own keys
		// and so sign any token; only a local test issuer may use it.
		u, err := url.Parse(c.OIDCIssuer)
		if err != nil || u.Host == "" || (u.Scheme != "https" && (u.Scheme != "http" || !isLoopbackHost(u.Hostname()))) {
			errs = append(errs, fmt.Errorf("CODEC_OIDC_ISSUER must be an https URL (http only on loopback), got %q", c.OIDCIssuer))
		}
	}
	if _, err := c.Origins(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, fmt.Errorf("CODEC_MAX_BODY_BYTES must be positive, got %d", c.MaxBodyBytes))
	}
	errs = append(errs, c.Log.validate(), c.Encryption.validate())
	return errors.Join(errs...)
}
