package codecserver

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
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
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: testKeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
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

func TestOIDCAccessTokens(t *testing.T) {
	iss := newTestIssuer(t)
	cfg := testConfig("ci:" + ciToken)
	cfg.OIDCIssuer, cfg.OIDCAudience = iss.url, testAudience
	url, logs := serve(t, cfg)
	body := payloadsJSON(t, jsonPayload(`"x"`))

	valid := iss.token(t, iss.key, iss.claims("user-7f3a", nil))
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
		"wrong audience":  {iss.token(t, iss.key, iss.claims("user-7f3a", map[string]any{"aud": "someone-else"})), "audience"},
		"expired":         {iss.token(t, iss.key, iss.claims("user-7f3a", map[string]any{"exp": time.Now().Add(-time.Minute).Unix()})), "expired"},
		"another key":     {iss.token(t, otherKey, iss.claims("user-7f3a", nil)), "signature"},
		"another issuer":  {iss.token(t, iss.key, iss.claims("user-7f3a", map[string]any{"iss": "https://issuer.example"})), "issued by a different provider"},
		"no subject":      {iss.token(t, iss.key, iss.claims("", map[string]any{"sub": nil})), "no sub"},
		"not a JWT":       {"not-a-jwt-0123456789abcdef", "nor a JWT"},
		"malformed JWT":   {"bm90.a.jwt", "malformed jwt"},
		"signature cut":   {valid[:strings.LastIndex(valid, ".")+1], "signature"},
		"payload swapped": {swapPayload(t, valid, iss.token(t, otherKey, iss.claims("admin", nil))), "signature"},
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
	cfg.OIDCIssuer, cfg.OIDCAudience = srv.URL, testAudience
	_, err := New(cfg, reverseCodec{}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "CODEC_OIDC_ISSUER") {
		t.Fatalf("New with an unreachable issuer: error %v, want one naming CODEC_OIDC_ISSUER", err)
	}
}
