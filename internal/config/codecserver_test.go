package config

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
)

// clearCodecServerEnv unsets every variable of CodecServer for the test.
func clearCodecServerEnv(t *testing.T) {
	t.Helper()
	for _, v := range Vars(CodecServer{}) {
		t.Setenv(v.Name, "")
		os.Unsetenv(v.Name)
	}
}

func TestLoadCodecServerDefaults(t *testing.T) {
	clearCodecServerEnv(t)
	c, err := LoadCodecServer()
	if err != nil {
		t.Fatal(err)
	}
	checkDefaults(t, c)
	if !c.Loopback() || c.AuthConfigured() {
		t.Errorf("the defaults should listen on loopback without auth: %+v", c)
	}
	origins, err := c.Origins()
	if err != nil || strings.Join(origins, ",") != "http://localhost:8233,http://127.0.0.1:8233" {
		t.Errorf("origins %q, %v: want the dev server UI's", origins, err)
	}
}

func TestCodecServerTokens(t *testing.T) {
	clearCodecServerEnv(t)
	t.Setenv("CODEC_AUTH_TOKEN", " ci:ci-token-0123456789abcdef , bare-token-0123456789abcdef,,ops.team:tok:with:colons-0123")
	c, err := LoadCodecServer()
	if err != nil {
		t.Fatal(err)
	}
	tokens, encode, err := c.Tokens()
	if err != nil {
		t.Fatal(err)
	}
	if len(encode) != 0 {
		t.Errorf("encode tokens %v from CODEC_AUTH_TOKEN alone: it decodes only", encode)
	}
	want := []CodecToken{
		{"ci", "ci-token-0123456789abcdef"},
		{StaticCodecTokenName, "bare-token-0123456789abcdef"},
		{"ops.team", "tok:with:colons-0123"},
	}
	if len(tokens) != len(want) {
		t.Fatalf("tokens %v, want %v", tokens, want)
	}
	for i := range want {
		if tokens[i] != want[i] {
			t.Errorf("token %d = %s, want %s", i, tokens[i].Name, want[i].Name)
		}
	}
	if !c.AuthConfigured() {
		t.Error("tokens set: AuthConfigured should say so")
	}
	// Neither printing a token nor logging it shows the secret.
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("t", "token", tokens[0])
	fmt.Fprintf(&b, "%v %s %+v", tokens[0], tokens[0], tokens)
	if strings.Contains(b.String(), "ci-token") {
		t.Errorf("a token shows its secret: %s", b.String())
	}
	b.Reset()
	if err := Print(&b, c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "CODEC_AUTH_TOKEN=<3 secrets>") || strings.Contains(b.String(), "token-0123") {
		t.Errorf("Print shows:\n%s", b.String())
	}
}

// CODEC_ENCODE_AUTH_TOKEN is a list of its own, never the decode tokens:
// a token that reads histories must not also make trusted payloads.
func TestCodecServerEncodeTokens(t *testing.T) {
	clearCodecServerEnv(t)
	t.Setenv("CODEC_AUTH_TOKEN", "ci:ci-token-0123456789abcdef")
	t.Setenv("CODEC_ENCODE_AUTH_TOKEN", "ops:ops-encode-0123456789abcdef, enc-bare-0123456789abcdef")
	c, err := LoadCodecServer()
	if err != nil {
		t.Fatal(err)
	}
	decode, encode, err := c.Tokens()
	if err != nil {
		t.Fatal(err)
	}
	if len(decode) != 1 || decode[0].Name != "ci" {
		t.Errorf("decode tokens %v, want ci alone", decode)
	}
	if len(encode) != 2 || encode[0] != (CodecToken{"ops", "ops-encode-0123456789abcdef"}) || encode[1].Name != StaticCodecTokenName {
		t.Errorf("encode tokens %v, want ops and a bare one", encode)
	}
	var b strings.Builder
	if err := Print(&b, c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "CODEC_ENCODE_AUTH_TOKEN=<2 secrets>") || strings.Contains(b.String(), "0123456789") {
		t.Errorf("Print shows:\n%s", b.String())
	}

	clearCodecServerEnv(t)
	t.Setenv("CODEC_ENCODE_AUTH_TOKEN", "ops:ops-encode-0123456789abcdef")
	if c, err := LoadCodecServer(); err != nil || !c.AuthConfigured() {
		t.Errorf("an encode token alone: %v, AuthConfigured %v; want callers to authenticate", err, c.AuthConfigured())
	}
}

// Claim requirements: claim=value entries, parsed in order; an OIDC issuer
// needs a decode requirement, and requirements need an issuer.
func TestCodecServerClaimRequirements(t *testing.T) {
	clearCodecServerEnv(t)
	t.Setenv("CODEC_OIDC_ISSUER", "https://id.example/realms/ops")
	t.Setenv("CODEC_OIDC_AUDIENCE", "temporal-ui")
	t.Setenv("CODEC_DECODE_REQUIRE_CLAIM", " groups=kyc-ops, groups = compliance ,realm_access.roles=codec=read")
	t.Setenv("CODEC_ENCODE_REQUIRE_CLAIM", "scope=codec:encode")
	c, err := LoadCodecServer()
	if err != nil {
		t.Fatal(err)
	}
	decode, encode, err := c.ClaimRequirements()
	if err != nil {
		t.Fatal(err)
	}
	want := []ClaimRequirement{{"groups", "kyc-ops"}, {"groups", "compliance"}, {"realm_access.roles", "codec=read"}}
	if fmt.Sprint(decode) != fmt.Sprint(want) {
		t.Errorf("decode requirements %v, want %v", decode, want)
	}
	if len(encode) != 1 || encode[0].String() != "scope=codec:encode" {
		t.Errorf("encode requirements %v, want scope=codec:encode", encode)
	}

	// No encode requirement: /encode is closed to OIDC tokens, which is no
	// reason to refuse to start.
	t.Setenv("CODEC_ENCODE_REQUIRE_CLAIM", "")
	if _, err := LoadCodecServer(); err != nil {
		t.Errorf("no encode requirement: %v", err)
	}
}

func TestCodecServerRejectsBadValues(t *testing.T) {
	const secret = "s3cr3t"
	for name, c := range map[string]struct {
		env  map[string]string
		want string // in the error
	}{
		"short token":          {map[string]string{"CODEC_AUTH_TOKEN": "ci:" + secret}, "CODEC_AUTH_TOKEN entry 1 (ci)"},
		"bad token name":       {map[string]string{"CODEC_AUTH_TOKEN": "c i:" + secret + "-0123456789abcdef"}, "CODEC_AUTH_TOKEN entry 1"},
		"duplicate token":      {map[string]string{"CODEC_AUTH_TOKEN": "a:" + secret + "-0123456789abcdef,b:" + secret + "-0123456789abcdef"}, "entry 2 (b)"},
		"issuer, no audience":  {map[string]string{"CODEC_OIDC_ISSUER": "https://id.example"}, "CODEC_OIDC_AUDIENCE"},
		"audience, no issuer":  {map[string]string{"CODEC_OIDC_AUDIENCE": "ui"}, "CODEC_OIDC_ISSUER"},
		"http issuer":          {map[string]string{"CODEC_OIDC_ISSUER": "http://id.example", "CODEC_OIDC_AUDIENCE": "ui"}, "https"},
		"issuer not a URL":     {map[string]string{"CODEC_OIDC_ISSUER": "id.example", "CODEC_OIDC_AUDIENCE": "ui"}, "CODEC_OIDC_ISSUER"},
		"wildcard origin":      {map[string]string{"CODEC_CORS_ORIGINS": "*"}, "CODEC_CORS_ORIGINS"},
		"origin with path":     {map[string]string{"CODEC_CORS_ORIGINS": "http://localhost:8233/ui"}, "CODEC_CORS_ORIGINS"},
		"origin without host":  {map[string]string{"CODEC_CORS_ORIGINS": "localhost:8233"}, "CODEC_CORS_ORIGINS"},
		"no body cap":          {map[string]string{"CODEC_MAX_BODY_BYTES": "0"}, "CODEC_MAX_BODY_BYTES"},
		"address without port": {map[string]string{"CODEC_ADDR": "127.0.0.1"}, "CODEC_ADDR"},
		"log format":           {map[string]string{"LOG_FORMAT": "xml"}, "LOG_FORMAT"},
		"short encode token":   {map[string]string{"CODEC_ENCODE_AUTH_TOKEN": "ops:" + secret}, "CODEC_ENCODE_AUTH_TOKEN entry 1 (ops)"},
		"token in both lists": {map[string]string{"CODEC_AUTH_TOKEN": "ci:" + secret + "-0123456789abcdef",
			"CODEC_ENCODE_AUTH_TOKEN": "x:other-0123456789abcdef,ops:" + secret + "-0123456789abcdef"}, "CODEC_ENCODE_AUTH_TOKEN entry 2 (ops) is also in CODEC_AUTH_TOKEN (ci)"},
		"issuer, no decode claim": {map[string]string{"CODEC_OIDC_ISSUER": "https://id.example", "CODEC_OIDC_AUDIENCE": "ui"},
			"CODEC_DECODE_REQUIRE_CLAIM must be set"},
		"issuer, encode claim only": {map[string]string{"CODEC_OIDC_ISSUER": "https://id.example", "CODEC_OIDC_AUDIENCE": "ui",
			"CODEC_ENCODE_REQUIRE_CLAIM": "groups=ops"}, "CODEC_DECODE_REQUIRE_CLAIM must be set"},
		"claim, no issuer":    {map[string]string{"CODEC_DECODE_REQUIRE_CLAIM": "groups=ops"}, "CODEC_OIDC_ISSUER is not set"},
		"claim without =":     {map[string]string{"CODEC_OIDC_ISSUER": "https://id.example", "CODEC_OIDC_AUDIENCE": "ui", "CODEC_DECODE_REQUIRE_CLAIM": "groups"}, "CODEC_DECODE_REQUIRE_CLAIM entry 1"},
		"claim without value": {map[string]string{"CODEC_OIDC_ISSUER": "https://id.example", "CODEC_OIDC_AUDIENCE": "ui", "CODEC_DECODE_REQUIRE_CLAIM": "groups=ops,groups="}, "CODEC_DECODE_REQUIRE_CLAIM entry 2"},
		"claim without name":  {map[string]string{"CODEC_OIDC_ISSUER": "https://id.example", "CODEC_OIDC_AUDIENCE": "ui", "CODEC_DECODE_REQUIRE_CLAIM": "=ops"}, "CODEC_DECODE_REQUIRE_CLAIM entry 1"},
		"encode claim spaced": {map[string]string{"CODEC_OIDC_ISSUER": "https://id.example", "CODEC_OIDC_AUDIENCE": "ui", "CODEC_DECODE_REQUIRE_CLAIM": "groups=ops",
			"CODEC_ENCODE_REQUIRE_CLAIM": "my groups=ops"}, "CODEC_ENCODE_REQUIRE_CLAIM entry 1"},
	} {
		t.Run(name, func(t *testing.T) {
			clearCodecServerEnv(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			_, err := LoadCodecServer()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one with %q", err, c.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows a token: %v", err)
			}
		})
	}
}

func TestCodecServerAccepts(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"OIDC": {"CODEC_OIDC_ISSUER": "https://id.example/realms/ops", "CODEC_OIDC_AUDIENCE": "temporal-ui",
			"CODEC_DECODE_REQUIRE_CLAIM": "groups=kyc-ops"},
		"local http issuer": {"CODEC_OIDC_ISSUER": "http://127.0.0.1:5556/dex", "CODEC_OIDC_AUDIENCE": "temporal-ui",
			"CODEC_DECODE_REQUIRE_CLAIM": "aud=temporal-ui"},
		"CORS off":               {"CODEC_CORS_ORIGINS": ""},
		"origin, trailing slash": {"CODEC_CORS_ORIGINS": "HTTPS://Temporal.Example.com/"},
	} {
		t.Run(name, func(t *testing.T) {
			clearCodecServerEnv(t)
			for k, v := range env {
				t.Setenv(k, v)
			}
			if _, err := LoadCodecServer(); err != nil {
				t.Fatal(err)
			}
		})
	}
	clearCodecServerEnv(t)
	t.Setenv("CODEC_CORS_ORIGINS", "")
	if c, err := LoadCodecServer(); err != nil || len(c.CORSOrigins) != 0 {
		t.Errorf("CODEC_CORS_ORIGINS set empty: origins %q, %v; want none (CORS off)", c.CORSOrigins, err)
	}
	c := CodecServer{CORSOrigins: []string{"HTTPS://Temporal.Example.com/"}}
	if o, err := c.Origins(); err != nil || o[0] != "https://temporal.example.com" {
		t.Errorf("origin %q, %v: want it as browsers send it", o, err)
	}
}

func TestCodecServerLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8081": true, "localhost:8081": true, "LOCALHOST:8081": true, "[::1]:8081": true,
		":8081": false, "0.0.0.0:8081": false, "192.168.1.4:8081": false, "codec.internal:8081": false, "127.0.0.1": false,
	} {
		if got := (CodecServer{Addr: addr}).Loopback(); got != want {
			t.Errorf("%q: Loopback() = %v, want %v", addr, got, want)
		}
	}
}
