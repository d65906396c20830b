package codecserver

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/diditflow/diditflow/internal/config"
)

const (
	testAudience = "temporal-ui"
	testKeyID    = "test-key"
)

// testIssuer is an OIDC provider as far as a token's verifier sees one: a
// discovery document and a key set with one RSA key.
type testIssuer struct {
	url string
	key *rsa.PrivateKey
}

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &testIssuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                iss.url,
			"jwks_uri":                              iss.url + "/keys",
			"authorization_endpoint":                iss.url + "/authorize",
			"token_endpoint":                        iss.url + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &key.PublicKey, KeyID: testKeyID, Algorithm: string(jose.RS256), Use: "sig"},
		}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	iss.url = srv.URL
	return iss
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// token returns a JWT of claims signed by key under the issuer's key ID.
func (iss *testIssuer) token(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	return iss.typedToken(t, key, "JWT", claims)
}

// typedToken is token with typ in its header: "at+jwt" for an RFC 9068
// access token.
func (iss *testIssuer) typedToken(t *testing.T, key *rsa.PrivateKey, typ jose.ContentType, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: testKeyID}},
		(&jose.SignerOptions{}).WithType(typ))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claims are those of a valid access token of subject, with changes.
func (iss *testIssuer) claims(subject string, changes map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": iss.url, "aud": testAudience, "sub": subject,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// oidcConfig accepts iss's tokens for testAudience: to decode with the
// claims decode requires, to encode with those encode requires (none: not
// at all), besides the static tokens given.
func oidcConfig(iss *testIssuer, decode, encode []string, tokens ...string) config.CodecServer {
	cfg := testConfig(tokens...)
	cfg.OIDCIssuer, cfg.OIDCAudience = iss.url, testAudience
	cfg.DecodeRequireClaims, cfg.EncodeRequireClaims = decode, encode
	return cfg
}

// kycOps is the claim testIssuer's users need to decode.
var kycOps = map[string]any{"groups": []string{"kyc-ops"}}

func TestOIDCAccessTokens(t *testing.T) {
	iss := newTestIssuer(t)
	url, logs := serve(t, oidcConfig(iss, []string{"groups=kyc-ops"}, nil, "ci:"+ciToken))
	body := payloadsJSON(t, jsonPayload(`"x"`))

	valid := iss.token(t, iss.key, iss.claims("user-7f3a", kycOps))
	r := call(t, http.MethodPost, url+"/decode", body, "Authorization", "Bearer "+valid, "X-Namespace", "default")
	if r.status != http.StatusOK {
		t.Fatalf("valid token: status %d: %s", r.status, r.body)
	}
	if line := logs.lastAudit(t); !strings.Contains(line, `"caller":"user-7f3a"`) || !strings.Contains(line, `"auth":"oidc"`) {
		t.Errorf("audit line %s should name the token's subject", line)
	}
	// The static token still works beside OIDC.
	if r := call(t, http.MethodPost, url+"/default/decode", body, "Authorization", "Bearer "+ciToken); r.status != http.StatusOK {
		t.Errorf("static token beside OIDC: status %d", r.status)
	}

	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		token  string
		reason string // in the audit line
	}{
		"wrong audience":  {iss.token(t, iss.key, iss.claims("user-7f3a", map[string]any{"aud": "someone-else", "groups": "kyc-ops"})), "audience"},
		"expired":         {iss.token(t, iss.key, iss.claims("user-7f3a", map[string]any{"exp": time.Now().Add(-time.Minute).Unix(), "groups": "kyc-ops"})), "expired"},
		"another key":     {iss.token(t, otherKey, iss.claims("user-7f3a", kycOps)), "signature"},
		"another issuer":  {iss.token(t, iss.key, iss.claims("user-7f3a", map[string]any{"iss": "https://issuer.example", "groups": "kyc-ops"})), "issued by a different provider"},
		"no subject":      {iss.token(t, iss.key, iss.claims("", map[string]any{"sub": nil, "groups": "kyc-ops"})), "no sub"},
		"not a JWT":       {"not-a-jwt-0123456789abcdef", "nor a JWT"},
		"malformed JWT":   {"bm90.a.jwt", "malformed jwt"},
		"signature cut":   {valid[:strings.LastIndex(valid, ".")+1], "signature"},
		"payload swapped": {swapPayload(t, valid, iss.token(t, otherKey, iss.claims("admin", kycOps))), "signature"},
	} {
		t.Run(name, func(t *testing.T) {
			r := call(t, http.MethodPost, url+"/default/decode", body, "Authorization", "Bearer "+c.token)
			if r.status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", r.status)
			}
			if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") || !strings.Contains(got, "invalid_token") {
				t.Errorf("WWW-Authenticate = %q", got)
			}
			if line := logs.lastAudit(t); !strings.Contains(line, `"namespace":"default"`) || !strings.Contains(line, c.reason) ||
				strings.Contains(line, `"caller":"user-7f3a"`) {
				t.Errorf("audit line %s should record the namespace and why, and name no caller", line)
			}
		})
	}
	if strings.Contains(logs.String(), valid) {
		t.Errorf("the log holds a token:\n%s", logs.String())
	}
}

// An OIDC token decodes only with the claims CODEC_DECODE_REQUIRE_CLAIM
// names: every claim named, with one of the values given for it, as a
// value or in a list. A token of the issuer without them is refused 403,
// and the audit line names the caller and the claim it lacks, never the
// token or what the token claims.
func TestOIDCRequiredClaims(t *testing.T) {
	iss := newTestIssuer(t)
	url, logs := serve(t, oidcConfig(iss, []string{"groups=kyc-ops", "groups=compliance", "email_verified=true"}, nil))
	body := payloadsJSON(t, jsonPayload(`"x"`))
	const email = "alice.secret@example.com"
	for name, c := range map[string]struct {
		claims  map[string]any
		missing string // in the audit line of a refusal; "" when allowed
	}{
		"group in a list":           {map[string]any{"groups": []string{"sales", "kyc-ops"}, "email_verified": true}, ""},
		"the other group":           {map[string]any{"groups": []string{"compliance"}, "email_verified": true}, ""},
		"group as a string":         {map[string]any{"groups": "kyc-ops", "email_verified": true}, ""},
		"verified as a string":      {map[string]any{"groups": "kyc-ops", "email_verified": "true"}, ""},
		"no groups":                 {map[string]any{"email_verified": true}, "missing claim groups=kyc-ops or groups=compliance"},
		"other groups":              {map[string]any{"groups": []string{"sales", "kyc-ops-admin", "KYC-OPS"}, "email_verified": true}, "groups=kyc-ops or groups=compliance"},
		"group, email not verified": {map[string]any{"groups": []string{"kyc-ops"}, "email_verified": false}, "missing claim email_verified=true"},
		"group, no email_verified":  {map[string]any{"groups": []string{"kyc-ops"}}, "missing claim email_verified=true"},
		"group in a nested list":    {map[string]any{"groups": [][]string{{"kyc-ops"}}, "email_verified": true}, "groups=kyc-ops"},
		"group as an object's key":  {map[string]any{"groups": map[string]bool{"kyc-ops": true}, "email_verified": true}, "groups=kyc-ops"},
		"nothing":                   {nil, "missing claim groups=kyc-ops or groups=compliance, email_verified=true"},
	} {
		t.Run(name, func(t *testing.T) {
			claims := map[string]any{"email": email}
			maps.Copy(claims, c.claims)
			token := iss.token(t, iss.key, iss.claims("user-7f3a", claims))
			r := call(t, http.MethodPost, url+"/default/decode", body, "Authorization", "Bearer "+token)
			line := logs.lastAudit(t)
			if c.missing == "" {
				if r.status != http.StatusOK {
					t.Fatalf("status %d, want 200: %s", r.status, r.body)
				}
				return
			}
			if r.status != http.StatusForbidden {
				t.Fatalf("status %d, want 403: %s", r.status, r.body)
			}
			if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, `error="insufficient_scope"`) {
				t.Errorf("WWW-Authenticate = %q, want insufficient_scope", got)
			}
			for _, want := range []string{`"status":403`, `"level":"WARN"`, `"caller":"user-7f3a"`, `"auth":"oidc"`, c.missing} {
				if !strings.Contains(line, want) {
					t.Errorf("audit line %s lacks %s", line, want)
				}
			}
		})
	}
	if log := logs.String(); strings.Contains(log, email) || strings.Contains(log, "sales") || strings.Contains(log, "eyJ") {
		t.Errorf("the log holds what a token claims, or a token:\n%s", log)
	}
}

// The forms a claim takes at real issuers: a space-separated scope string
// (RFC 8693), a scp list (Okta), roles nested in an object (Keycloak's
// realm_access.roles), a namespaced claim whose name has dots (Auth0), a
// number, and the audience, which admits every token for it.
func TestOIDCClaimForms(t *testing.T) {
	iss := newTestIssuer(t)
	body := payloadsJSON(t, jsonPayload(`"x"`))
	for _, c := range []struct {
		require string
		claims  map[string]any
		ok      bool
	}{
		{"scope=codec:decode", map[string]any{"scope": "openid codec:decode profile"}, true},
		{"scope=codec:decode", map[string]any{"scope": "openid codec:decoder"}, false},
		{"scope=codec:decode", map[string]any{"scope": "openid codec:decode profile", "groups": "x"}, true},
		{"scp=codec.read", map[string]any{"scp": []string{"openid", "codec.read"}}, true},
		{"groups=kyc ops", map[string]any{"groups": "kyc ops"}, true},
		{"groups=ops", map[string]any{"groups": "kyc ops"}, false}, // only scope and scp split on spaces
		{"realm_access.roles=kyc-ops", map[string]any{"realm_access": map[string]any{"roles": []string{"offline", "kyc-ops"}}}, true},
		{"realm_access.roles=kyc-ops", map[string]any{"realm_access": map[string]any{"roles": []string{"offline"}}}, false},
		{"realm_access.roles=kyc-ops", map[string]any{"realm_access": "kyc-ops"}, false},
		{"https://diditflow.example/roles=ops", map[string]any{"https://diditflow.example/roles": []string{"ops"}}, true},
		{"clearance=3", map[string]any{"clearance": 3}, true},
		{"clearance=3", map[string]any{"clearance": 3.5}, false},
		{"aud=" + testAudience, map[string]any{"aud": []string{"other", testAudience}}, true},
		{"aud=" + testAudience, nil, true},
	} {
		url, logs := serve(t, oidcConfig(iss, []string{c.require}, nil))
		token := iss.token(t, iss.key, iss.claims("user-7f3a", c.claims))
		r := call(t, http.MethodPost, url+"/default/decode", body, "Authorization", "Bearer "+token)
		if want := map[bool]int{true: http.StatusOK, false: http.StatusForbidden}[c.ok]; r.status != want {
			t.Errorf("%s, claims %v: status %d, want %d", c.require, c.claims, r.status, want)
		}
		if !c.ok && !strings.Contains(logs.lastAudit(t), "missing claim "+c.require) {
			t.Errorf("%s, claims %v: audit line %s should name the claim", c.require, c.claims, logs.lastAudit(t))
		}
	}
}

// /encode makes payloads the workers trust, so reading histories does not
// grant it: without CODEC_ENCODE_REQUIRE_CLAIM no OIDC token encodes, and
// with it only tokens with its claims do, whatever they may decode.
func TestOIDCEncodeNeedsItsOwnClaim(t *testing.T) {
	iss := newTestIssuer(t)
	body := payloadsJSON(t, jsonPayload(`"x"`))
	reader := iss.token(t, iss.key, iss.claims("reader-1", kycOps))
	writer := iss.token(t, iss.key, iss.claims("writer-2", map[string]any{"roles": []string{"codec-encoder"}}))

	url, logs := serve(t, oidcConfig(iss, []string{"groups=kyc-ops"}, nil))
	if r := call(t, http.MethodPost, url+"/default/decode", body, "Authorization", "Bearer "+reader); r.status != http.StatusOK {
		t.Fatalf("decode: status %d: %s", r.status, r.body)
	}
	r := call(t, http.MethodPost, url+"/default/encode", body, "Authorization", "Bearer "+reader)
	if r.status != http.StatusForbidden {
		t.Fatalf("encode without CODEC_ENCODE_REQUIRE_CLAIM: status %d, want 403", r.status)
	}
	if line := logs.lastAudit(t); !strings.Contains(line, `"caller":"reader-1"`) || !strings.Contains(line, "CODEC_ENCODE_REQUIRE_CLAIM") ||
		!strings.Contains(line, `"operation":"encode"`) {
		t.Errorf("audit line %s should name the caller and why /encode is closed", line)
	}
	if !strings.Contains(logs.String(), "encode_claims") {
		t.Errorf("the start line should say who may encode:\n%s", logs.String())
	}

	url, logs = serve(t, oidcConfig(iss, []string{"groups=kyc-ops"}, []string{"roles=codec-encoder"}))
	for _, c := range []struct {
		token, op string
		status    int
		missing   string
	}{
		{writer, "encode", http.StatusOK, ""},
		{reader, "encode", http.StatusForbidden, "missing claim roles=codec-encoder"},
		{writer, "decode", http.StatusForbidden, "missing claim groups=kyc-ops"},
		{reader, "decode", http.StatusOK, ""},
	} {
		r := call(t, http.MethodPost, url+"/default/"+c.op, body, "Authorization", "Bearer "+c.token)
		if r.status != c.status {
			t.Errorf("%s: status %d, want %d", c.op, r.status, c.status)
		}
		if line := logs.lastAudit(t); !strings.Contains(line, c.missing) {
			t.Errorf("%s: audit line %s lacks %q", c.op, line, c.missing)
		}
	}
}

// An ID token is not an access token: it is handed to the browser (the UI
// sends it in Authorization-Extras) and its audience is the UI's client,
// so it is refused even from the issuer, with the claims, for the
// audience. What marks one: at_hash or c_hash, which only an ID token
// carries, or Keycloak's typ claim "ID"; an RFC 9068 access token's header
// says at+jwt.
func TestOIDCRefusesIDTokens(t *testing.T) {
	iss := newTestIssuer(t)
	url, logs := serve(t, oidcConfig(iss, []string{"groups=kyc-ops"}, nil))
	body := payloadsJSON(t, jsonPayload(`"x"`))
	with := func(extra map[string]any) map[string]any {
		c := map[string]any{"groups": "kyc-ops"}
		maps.Copy(c, extra)
		return iss.claims("user-7f3a", c)
	}
	for name, token := range map[string]string{
		"at_hash":         iss.token(t, iss.key, with(map[string]any{"at_hash": "Xa4J9aK0ObtjqGyhSJ3wIA", "nonce": "n-0S6_WzA2Mj"})),
		"c_hash":          iss.token(t, iss.key, with(map[string]any{"c_hash": "LDktKdoQak3Pk0cnXxCltA"})),
		"Keycloak typ ID": iss.token(t, iss.key, with(map[string]any{"typ": "ID", "azp": testAudience})),
	} {
		r := call(t, http.MethodPost, url+"/default/decode", body, "Authorization", "Bearer "+token)
		if r.status != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, r.status)
		}
		if line := logs.lastAudit(t); !strings.Contains(line, "ID token") || !strings.Contains(line, `"caller":"user-7f3a"`) {
			t.Errorf("%s: audit line %s should say it is an ID token, and whose", name, line)
		}
	}
	// The UI sends its user's ID token in Authorization-Extras; it stands in
	// for nothing the access token lacks.
	idToken := iss.token(t, iss.key, with(map[string]any{"at_hash": "Xa4J9aK0ObtjqGyhSJ3wIA"}))
	plain := iss.token(t, iss.key, iss.claims("user-7f3a", nil))
	r := call(t, http.MethodPost, url+"/default/decode", body, "Authorization", "Bearer "+plain, "Authorization-Extras", idToken)
	if r.status != http.StatusForbidden {
		t.Errorf("an access token without the claim, its ID token with it in Authorization-Extras: status %d, want 403", r.status)
	}
	for name, token := range map[string]string{
		"RFC 9068 access token":        iss.typedToken(t, iss.key, "at+jwt", with(map[string]any{"client_id": "temporal-ui"})),
		"Keycloak access token":        iss.token(t, iss.key, with(map[string]any{"typ": "Bearer", "nonce": "n-0S6_WzA2Mj"})),
		"access token without marks":   iss.token(t, iss.key, with(nil)),
		"application/at+jwt, c_hash'd": iss.typedToken(t, iss.key, "application/at+jwt", with(map[string]any{"c_hash": "x"})),
	} {
		if r := call(t, http.MethodPost, url+"/default/decode", body, "Authorization", "Bearer "+token); r.status != http.StatusOK {
			t.Errorf("%s: status %d, want 200: %s", name, r.status, r.body)
		}
	}
}

// Without a decode claim an OIDC server would let every user of the issuer
// read every history: it does not start.
func TestOIDCNeedsADecodeClaim(t *testing.T) {
	iss := newTestIssuer(t)
	_, err := New(oidcConfig(iss, nil, []string{"roles=codec-encoder"}), reverseCodec{}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "CODEC_DECODE_REQUIRE_CLAIM") {
		t.Fatalf("New with an issuer and no decode claim: error %v, want one naming CODEC_DECODE_REQUIRE_CLAIM", err)
	}
}

// swapPayload puts the claims of from into the signed token to, keeping
// to's signature.
func swapPayload(t *testing.T, to, from string) string {
	t.Helper()
	a, b := strings.Split(to, "."), strings.Split(from, ".")
	if len(a) != 3 || len(b) != 3 {
		t.Fatal("not compact JWTs")
	}
	return a[0] + "." + b[1] + "." + a[2]
}

func TestOIDCIssuerUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	cfg := testConfig()
	cfg.OIDCIssuer, cfg.OIDCAudience, cfg.DecodeRequireClaims = srv.URL, testAudience, []string{"groups=kyc-ops"}
	_, err := New(cfg, reverseCodec{}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "CODEC_OIDC_ISSUER") {
		t.Fatalf("New with an unreachable issuer: error %v, want one naming CODEC_OIDC_ISSUER", err)
	}
}
