package codecserver

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/diditflow/diditflow/internal/config"
)

// testEncoding marks a payload reverseCodec encoded.
const testEncoding = "binary/test-reversed"

// testMagic starts the data of every payload reverseCodec encoded, so that
// its Decode can tell a payload that was altered.
const testMagic = "TEST"

// reverseCodec stands in for the AES-256-GCM codec: it wraps the whole
// payload, reversed, in a payload of its own encoding. On a payload it did
// not make, its error quotes the payload's data, as a careless codec's
// might, to show that the server does not pass that on.
type reverseCodec struct{}

func (reverseCodec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		b, err := proto.Marshal(p)
		if err != nil {
			return nil, err
		}
		slices.Reverse(b)
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{converter.MetadataEncoding: []byte(testEncoding)},
			Data:     append([]byte(testMagic), b...),
		}
	}
	return out, nil
}

func (reverseCodec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.Metadata[converter.MetadataEncoding]) != testEncoding {
			out[i] = p
			continue
		}
		b, ok := bytes.CutPrefix(p.Data, []byte(testMagic))
		if !ok {
			return nil, fmt.Errorf("payload %d is not ours: %q", i, p.Data)
		}
		b = slices.Clone(b)
		slices.Reverse(b)
		out[i] = &commonpb.Payload{}
		if err := proto.Unmarshal(b, out[i]); err != nil {
			return nil, fmt.Errorf("payload %d: %w", i, err)
		}
	}
	return out, nil
}

// logBuffer collects the server's log lines. The server writes from its
// own goroutines, and the race detector cannot see that the client's read
// of the answer comes after, so it is guarded.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// auditLines returns the audit lines logged so far.
func (b *logBuffer) auditLines() []string {
	var lines []string
	for line := range strings.Lines(b.String()) {
		if strings.Contains(line, `"msg":"codec call"`) {
			lines = append(lines, line)
		}
	}
	return lines
}

// lastAudit returns the last audit line, failing the test without one.
func (b *logBuffer) lastAudit(t *testing.T) string {
	t.Helper()
	lines := b.auditLines()
	if len(lines) == 0 {
		t.Fatalf("no audit line in the log:\n%s", b.String())
	}
	return lines[len(lines)-1]
}

const (
	ciToken     = "ci-token-0123456789abcdef"
	bareToken   = "bare-token-0123456789abcdef"
	encodeToken = "ops-encode-0123456789abcdef"
)

// testConfig is the codec server's defaults, with the static tokens given.
func testConfig(tokens ...string) config.CodecServer {
	return config.CodecServer{
		Addr:         "127.0.0.1:8081",
		AuthTokens:   tokens,
		CORSOrigins:  []string{"http://localhost:8233", "http://127.0.0.1:8233"},
		MaxBodyBytes: 4 << 20,
	}
}

// serve runs New(cfg) behind a real HTTP server and returns its URL and its
// log.
func serve(t *testing.T, cfg config.CodecServer) (string, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	h, err := New(cfg, reverseCodec{}, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, logs
}

// response is what a call got back.
type response struct {
	status int
	header http.Header
	body   string
}

// call sends method url with body and the headers given as name, value
// pairs.
func call(t *testing.T, method, url, body string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// payloadsJSON is the request body of payloads, as the CLI and UI send it.
func payloadsJSON(t *testing.T, payloads ...*commonpb.Payload) string {
	t.Helper()
	b, err := protojson.Marshal(&commonpb.Payloads{Payloads: payloads})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// parsePayloads reads an answer's payloads.
func parsePayloads(t *testing.T, body string) []*commonpb.Payload {
	t.Helper()
	var p commonpb.Payloads
	if err := protojson.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("answer %q: %v", body, err)
	}
	return p.Payloads
}

func jsonPayload(data string) *commonpb.Payload {
	return &commonpb.Payload{
		Metadata: map[string][]byte{converter.MetadataEncoding: []byte(converter.MetadataEncodingJSON)},
		Data:     []byte(data),
	}
}

func TestRefusesCallsWithoutAValidToken(t *testing.T) {
	url, logs := serve(t, testConfig("ci:"+ciToken))
	body := payloadsJSON(t, jsonPayload(`"x"`))
	for name, auth := range map[string]string{
		"no token":      "",
		"wrong token":   "Bearer wrong-token-0123456789abcdef",
		"other scheme":  "Basic " + ciToken,
		"token alone":   ciToken,
		"empty bearer":  "Bearer ",
		"token's start": "Bearer " + ciToken[:10],
	} {
		t.Run(name, func(t *testing.T) {
			r := call(t, http.MethodPost, url+"/default/decode", body, "Authorization", auth)
			if r.status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", r.status)
			}
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", r.header.Get("WWW-Authenticate"))
			}
			line := logs.lastAudit(t)
			if !strings.Contains(line, `"status":401`) || !strings.Contains(line, `"level":"WARN"`) {
				t.Errorf("audit line %s should record the 401 as a warning", line)
			}
		})
	}
	if strings.Contains(logs.String(), ciToken[:10]) {
		t.Errorf("the log holds (part of) a token:\n%s", logs.String())
	}
}

// encodeConfig is testConfig with the static tokens given and the encode
// token "ops".
func encodeConfig(tokens ...string) config.CodecServer {
	cfg := testConfig(tokens...)
	cfg.EncodeAuthTokens = []string{"ops:" + encodeToken}
	return cfg
}

// Static tokens encode and decode, each with its own, in both of the
// protocol's forms: the namespace in the path and in X-Namespace.
func TestStaticTokenRoundTrip(t *testing.T) {
	url, logs := serve(t, encodeConfig("ci:"+ciToken, bareToken))
	original := []*commonpb.Payload{jsonPayload(`{"status":"Approved"}`), jsonPayload(`"second"`)}

	r := call(t, http.MethodPost, url+"/default/encode", payloadsJSON(t, original...), "Authorization", "Bearer "+encodeToken)
	if r.status != http.StatusOK {
		t.Fatalf("encode: status %d: %s", r.status, r.body)
	}
	encoded := parsePayloads(t, r.body)
	if len(encoded) != 2 || string(encoded[0].Metadata[converter.MetadataEncoding]) != testEncoding {
		t.Fatalf("encode returned %v, want the test codec's payloads", encoded)
	}
	line := logs.lastAudit(t)
	for _, want := range []string{`"operation":"encode"`, `"namespace":"default"`, `"caller":"ops"`, `"auth":"token"`, `"payloads":2`, `"status":200`} {
		if !strings.Contains(line, want) {
			t.Errorf("audit line %s lacks %s", line, want)
		}
	}

	r = call(t, http.MethodPost, url+"/decode", payloadsJSON(t, encoded...),
		"Authorization", "bearer "+bareToken, "X-Namespace", "diditflow")
	if r.status != http.StatusOK {
		t.Fatalf("decode: status %d: %s", r.status, r.body)
	}
	decoded := parsePayloads(t, r.body)
	if len(decoded) != len(original) {
		t.Fatalf("decoded %d payloads, want %d", len(decoded), len(original))
	}
	for i := range original {
		if !proto.Equal(decoded[i], original[i]) {
			t.Errorf("payload %d decoded to %v, want %v", i, decoded[i], original[i])
		}
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q: decoded payloads must not be cached", cc)
	}
	line = logs.lastAudit(t)
	for _, want := range []string{`"operation":"decode"`, `"namespace":"diditflow"`, `"caller":"static"`, `"payloads":2`, `"status":200`} {
		if !strings.Contains(line, want) {
			t.Errorf("audit line %s lacks %s", line, want)
		}
	}
}

// CODEC_AUTH_TOKEN decodes and CODEC_ENCODE_AUTH_TOKEN encodes, neither
// both: a token of the other list is refused 403 with an audit line that
// names it, and with no encode token /encode is closed to static tokens.
func TestStaticTokensPerOperation(t *testing.T) {
	body := payloadsJSON(t, jsonPayload(`"x"`))
	url, logs := serve(t, encodeConfig("ci:"+ciToken))
	for _, c := range []struct {
		op, token string
		status    int
		audit     []string
	}{
		{"decode", ciToken, http.StatusOK, []string{`"caller":"ci"`, `"status":200`}},
		{"encode", encodeToken, http.StatusOK, []string{`"caller":"ops"`, `"status":200`}},
		{"encode", ciToken, http.StatusForbidden, []string{`"caller":"ci"`, `"auth":"token"`, `"status":403`, `"level":"WARN"`, "CODEC_ENCODE_AUTH_TOKEN"}},
		{"decode", encodeToken, http.StatusForbidden, []string{`"caller":"ops"`, `"status":403`, `"level":"WARN"`, "CODEC_AUTH_TOKEN"}},
		{"encode", bareToken, http.StatusUnauthorized, []string{`"status":401`, "CODEC_ENCODE_AUTH_TOKEN"}},
	} {
		r := call(t, http.MethodPost, url+"/default/"+c.op, body, "Authorization", "Bearer "+c.token)
		if r.status != c.status {
			t.Errorf("%s with %.6s...: status %d, want %d", c.op, c.token, r.status, c.status)
		}
		if c.status == http.StatusForbidden {
			if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, `error="insufficient_scope"`) {
				t.Errorf("%s with %.6s...: WWW-Authenticate = %q, want insufficient_scope", c.op, c.token, got)
			}
			if strings.Contains(r.body, "CODEC_") {
				t.Errorf("%s with %.6s...: the answer %q tells the caller the server's settings", c.op, c.token, r.body)
			}
		}
		line := logs.lastAudit(t)
		for _, want := range append(c.audit, `"operation":"`+c.op+`"`) {
			if !strings.Contains(line, want) {
				t.Errorf("%s with %.6s...: audit line %s lacks %s", c.op, c.token, line, want)
			}
		}
	}

	// Decode tokens only: nothing encodes.
	url, logs = serve(t, testConfig("ci:"+ciToken))
	if r := call(t, http.MethodPost, url+"/default/encode", body, "Authorization", "Bearer "+ciToken); r.status != http.StatusForbidden {
		t.Errorf("encode with a decode token, no encode token set: status %d, want 403", r.status)
	}
	if line := logs.lastAudit(t); !strings.Contains(line, `"caller":"ci"`) || !strings.Contains(line, "none is set") {
		t.Errorf("audit line %s should name the caller and say no encode token is set", line)
	}
	if log := logs.String(); strings.Contains(log, ciToken) || strings.Contains(log, encodeToken) {
		t.Errorf("the log holds a token:\n%s", log)
	}

	// Encode tokens only: off loopback that is auth, and nothing decodes.
	cfg := encodeConfig()
	cfg.Addr = ":8081"
	url, _ = serve(t, cfg)
	if r := call(t, http.MethodPost, url+"/default/decode", body, "Authorization", "Bearer "+encodeToken); r.status != http.StatusForbidden {
		t.Errorf("decode with an encode token, no decode token set: status %d, want 403", r.status)
	}
	if r := call(t, http.MethodPost, url+"/default/decode", body); r.status != http.StatusUnauthorized {
		t.Errorf("decode without a token: status %d, want 401", r.status)
	}
}

// A caller that says which workflow it is reading (X-Workflow-Id; the CLI
// sends it with --codec-header) has it in the audit line, refused or not;
// one that cannot be an ID is refused, never logged as sent.
func TestAuditNamesTheWorkflow(t *testing.T) {
	url, logs := serve(t, testConfig("ci:"+ciToken))
	body := payloadsJSON(t, jsonPayload(`"x"`))
	auth := "Bearer " + ciToken
	const wf = "didit-session-3f6c1e9a-7d2b-4c1e-9a55-0e8f2b7c4d10"

	if r := call(t, http.MethodPost, url+"/default/decode", body, "Authorization", auth, "X-Workflow-Id", wf); r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if line := logs.lastAudit(t); !strings.Contains(line, `"workflow_id":"`+wf+`"`) || !strings.Contains(line, `"caller":"ci"`) {
		t.Errorf("audit line %s should name the workflow and the caller", line)
	}
	call(t, http.MethodPost, url+"/default/decode", body, "Authorization", auth)
	if line := logs.lastAudit(t); strings.Contains(line, "workflow_id") {
		t.Errorf("audit line %s names a workflow the call did not", line)
	}
	if r := call(t, http.MethodPost, url+"/default/decode", body, "Authorization", "Bearer wrong-token-0123456789abcdef", "X-Workflow-Id", wf); r.status != http.StatusUnauthorized {
		t.Errorf("wrong token: status %d, want 401", r.status)
	}
	if line := logs.lastAudit(t); !strings.Contains(line, `"workflow_id":"`+wf+`"`) {
		t.Errorf("audit line %s of a refused call should name the workflow it asked for", line)
	}

	for name, id := range map[string]string{
		"too long":       "didit-session-" + strings.Repeat("LONGID", 200),
		"a tab":          "didit-session-1\tFORGED",
		"not UTF-8":      "didit-session-1\xffFORGED",
		"blank":          "   ",
		"two of them":    "",
		"padded control": " didit-session-1\tFORGED ",
	} {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, url+"/default/decode", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", auth)
			if name == "two of them" {
				req.Header.Add("X-Workflow-Id", wf)
				req.Header.Add("X-Workflow-Id", "didit-session-FORGED")
			} else {
				req.Header.Set("X-Workflow-Id", id)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if name == "blank" {
				// As good as not sent.
				if resp.StatusCode != http.StatusOK {
					t.Errorf("status %d, want 200", resp.StatusCode)
				}
				return
			}
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", resp.StatusCode)
			}
			if line := logs.lastAudit(t); !strings.Contains(line, "X-Workflow-Id") || !strings.Contains(line, `"status":400`) {
				t.Errorf("audit line %s should record the refusal and why", line)
			}
		})
	}
	if log := logs.String(); strings.Contains(log, "LONGID") || strings.Contains(log, "FORGED") {
		t.Errorf("the log holds a workflow ID it refused:\n%s", log)
	}
}

func TestNamespace(t *testing.T) {
	url, logs := serve(t, testConfig(bareToken))
	body := payloadsJSON(t, jsonPayload(`"x"`))
	auth := "Bearer " + bareToken
	r := call(t, http.MethodPost, url+"/default/decode", body, "Authorization", auth, "X-Namespace", "other")
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "namespace") {
		t.Fatalf("path and header naming two namespaces: status %d: %s, want 400 naming the namespace", r.status, r.body)
	}
	if line := logs.lastAudit(t); !strings.Contains(line, `"status":400`) {
		t.Errorf("audit line %s should record the 400", line)
	}
	// The path and the header may both name the same namespace, as the UI
	// does with an endpoint that ends in the namespace.
	if r := call(t, http.MethodPost, url+"/default/decode", body, "Authorization", auth, "X-Namespace", "default"); r.status != http.StatusOK {
		t.Errorf("path and header naming the same namespace: status %d: %s", r.status, r.body)
	}
	// The Temporal CLI (1.5) posts to /decode with no X-Namespace: served,
	// and audited as unnamed.
	for _, header := range []string{"", "  "} {
		if r := call(t, http.MethodPost, url+"/decode", body, "Authorization", auth, "X-Namespace", header); r.status != http.StatusOK {
			t.Errorf("no namespace (header %q): status %d: %s", header, r.status, r.body)
		}
		if line := logs.lastAudit(t); !strings.Contains(line, unnamedNamespace) {
			t.Errorf("audit line %s should name the namespace %s", line, unnamedNamespace)
		}
	}
}

func TestOnlyCodecPathsAndPOST(t *testing.T) {
	url, _ := serve(t, testConfig(bareToken))
	auth := "Bearer " + bareToken
	for _, path := range []string{"/", "/default", "/default/other", "/a/b/decode", "//decode", "/default/decode/"} {
		if r := call(t, http.MethodPost, url+path, "{}", "Authorization", auth, "X-Namespace", "default"); r.status != http.StatusNotFound {
			t.Errorf("POST %s: status %d, want 404", path, r.status)
		}
	}
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		r := call(t, method, url+"/default/decode", "{}", "Authorization", auth)
		if r.status != http.StatusMethodNotAllowed {
			t.Errorf("%s: status %d, want 405", method, r.status)
		}
		if allow := r.header.Get("Allow"); allow != "POST, OPTIONS" {
			t.Errorf("%s: Allow = %q", method, allow)
		}
	}
}

func TestCORS(t *testing.T) {
	url, _ := serve(t, testConfig(bareToken))

	// The browser's preflight carries no credentials.
	r := call(t, http.MethodOptions, url+"/default/decode", "",
		"Origin", "http://localhost:8233", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization,authorization-extras,content-type,x-namespace")
	if r.status != http.StatusNoContent {
		t.Fatalf("preflight: status %d, want 204", r.status)
	}
	for name, want := range map[string]string{
		"Access-Control-Allow-Origin":      "http://localhost:8233",
		"Access-Control-Allow-Methods":     "POST, OPTIONS",
		"Access-Control-Allow-Credentials": "true",
		"Vary":                             "Origin",
	} {
		if got := r.header.Get(name); got != want {
			t.Errorf("preflight: %s = %q, want %q", name, got, want)
		}
	}
	allowed := strings.ToLower(r.header.Get("Access-Control-Allow-Headers"))
	// The UI sends its user's ID token in Authorization-Extras beside the
	// access token (which alone authenticates): a preflight that did not
	// allow it would stop the UI from decoding at all.
	for _, h := range []string{"authorization", "authorization-extras", "content-type", "x-namespace", "x-workflow-id"} {
		if !strings.Contains(allowed, h) {
			t.Errorf("preflight: Access-Control-Allow-Headers = %q lacks %s", allowed, h)
		}
	}

	// The second default origin, and the real call, which the page must be
	// able to read whether it succeeds or not.
	body := payloadsJSON(t, jsonPayload(`"x"`))
	r = call(t, http.MethodPost, url+"/default/decode", body, "Origin", "http://127.0.0.1:8233", "Authorization", "Bearer "+bareToken)
	if r.status != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:8233" {
		t.Errorf("call from an allowed origin: status %d, Access-Control-Allow-Origin %q", r.status, r.header.Get("Access-Control-Allow-Origin"))
	}
	r = call(t, http.MethodPost, url+"/default/decode", body, "Origin", "http://localhost:8233")
	if r.status != http.StatusUnauthorized || r.header.Get("Access-Control-Allow-Origin") != "http://localhost:8233" {
		t.Errorf("401 to an allowed origin: status %d, Access-Control-Allow-Origin %q", r.status, r.header.Get("Access-Control-Allow-Origin"))
	}

	for _, origin := range []string{"https://evil.example", "http://localhost:8234", "null"} {
		for _, method := range []string{http.MethodOptions, http.MethodPost} {
			r := call(t, method, url+"/default/decode", body, "Origin", origin, "Access-Control-Request-Method", "POST",
				"Authorization", "Bearer "+bareToken)
			for _, name := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Allow-Methods"} {
				if got := r.header.Get(name); got != "" {
					t.Errorf("%s from %s: %s = %q, want none", method, origin, name, got)
				}
			}
		}
	}
}

func TestCheck(t *testing.T) {
	for addr, loopback := range map[string]bool{
		"127.0.0.1:8081": true, "localhost:8081": true, "[::1]:8081": true, "127.0.0.2:8081": true,
		":8081": false, "0.0.0.0:8081": false, "[::]:8081": false, "10.0.0.5:8081": false, "codec:8081": false,
	} {
		cfg := testConfig()
		cfg.Addr = addr
		e, err := Check(cfg)
		if e.Loopback != loopback {
			t.Errorf("%s: Loopback = %v, want %v", addr, e.Loopback, loopback)
		}
		if loopback != (err == nil) {
			t.Errorf("%s without auth: error %v", addr, err)
		}
		if err != nil && (!errors.Is(err, ErrNoAuth) || !strings.Contains(err.Error(), "CODEC_INSECURE")) {
			t.Errorf("%s: error %q should be ErrNoAuth and name CODEC_INSECURE", addr, err)
		}
		cfg.AuthTokens = []string{bareToken}
		if e, err := Check(cfg); err != nil || !e.Auth {
			t.Errorf("%s with a token: %+v, %v", addr, e, err)
		}
		cfg.AuthTokens, cfg.EncodeAuthTokens = nil, []string{encodeToken}
		if e, err := Check(cfg); err != nil || !e.Auth {
			t.Errorf("%s with an encode token: %+v, %v", addr, e, err)
		}
	}
}

func TestNonLoopbackWithoutAuth(t *testing.T) {
	cfg := testConfig()
	cfg.Addr = ":8081"
	if _, err := New(cfg, reverseCodec{}, slog.New(slog.DiscardHandler)); !errors.Is(err, ErrNoAuth) || !strings.Contains(err.Error(), "CODEC_INSECURE") {
		t.Fatalf("New off loopback without auth: error %v, want one naming CODEC_INSECURE", err)
	}

	cfg.Insecure = true
	url, logs := serve(t, cfg)
	if !strings.Contains(logs.String(), `"level":"WARN"`) || !strings.Contains(logs.String(), "CODEC_INSECURE") {
		t.Errorf("CODEC_INSECURE should be logged as a warning:\n%s", logs.String())
	}
	if r := call(t, http.MethodPost, url+"/default/decode", payloadsJSON(t, jsonPayload(`"x"`))); r.status != http.StatusOK {
		t.Errorf("insecure server: status %d: %s", r.status, r.body)
	}
}

func TestLoopbackWithoutAuthServesAnonymously(t *testing.T) {
	url, logs := serve(t, testConfig())
	r := call(t, http.MethodPost, url+"/default/decode", payloadsJSON(t, jsonPayload(`"x"`)))
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if line := logs.lastAudit(t); !strings.Contains(line, `"caller":"anonymous"`) || !strings.Contains(line, `"auth":"none"`) {
		t.Errorf("audit line %s should name the caller anonymous", line)
	}
	if strings.Contains(logs.String(), `"level":"WARN"`) {
		t.Errorf("open loopback is the dev default, not a warning:\n%s", logs.String())
	}
}

func TestBodyLimitAndValidation(t *testing.T) {
	cfg := testConfig(bareToken)
	cfg.MaxBodyBytes = 1024
	url, logs := serve(t, cfg)
	auth := "Bearer " + bareToken
	big := payloadsJSON(t, jsonPayload(`"`+strings.Repeat("a", 2048)+`"`))

	if r := call(t, http.MethodPost, url+"/default/decode", big, "Authorization", auth); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: status %d, want 413", r.status)
	}
	// Without a Content-Length the cap applies while reading.
	req, _ := http.NewRequest(http.MethodPost, url+"/default/decode", io.MultiReader(strings.NewReader(big)))
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized chunked body: status %d, want 413", resp.StatusCode)
	}
	if line := logs.lastAudit(t); !strings.Contains(line, `"status":413`) {
		t.Errorf("audit line %s should record the 413", line)
	}

	for name, body := range map[string]string{
		"malformed JSON":     `{"payloads":[`,
		"empty":              ``,
		"not an object":      `[{"data":"eA=="}]`,
		"payloads not list":  `{"payloads":"SECRET-IN-BODY"}`,
		"unknown field":      `{"payloads":[],"SECRET-IN-BODY":1}`,
		"data not base64":    `{"payloads":[{"data":"SECRET-IN-BODY!"}]}`,
		"metadata not bytes": `{"payloads":[{"metadata":{"encoding":"SECRET-IN-BODY!"},"data":"eA=="}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			r := call(t, http.MethodPost, url+"/default/decode", body, "Authorization", auth)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			if len(r.body) > 120 || strings.Contains(r.body, "SECRET-IN-BODY") {
				t.Errorf("answer %q should be a short reason that does not quote the body", r.body)
			}
		})
	}
	if strings.Contains(logs.String(), "SECRET-IN-BODY") {
		t.Errorf("the log quotes a body:\n%s", logs.String())
	}

	// An empty list comes as {} from protobuf's JSON.
	for _, body := range []string{`{}`, `{"payloads":[]}`} {
		r := call(t, http.MethodPost, url+"/default/decode", body, "Authorization", auth)
		if r.status != http.StatusOK || len(parsePayloads(t, r.body)) != 0 {
			t.Errorf("%s: status %d, %s", body, r.status, r.body)
		}
	}
}

// Neither the decoded payloads, nor the encrypted ones, nor a codec error
// quoting them, reaches the log; a codec error does not reach the caller
// either.
func TestPayloadsNeverLogged(t *testing.T) {
	const sentinel = "SENTINEL-user@example.com-4111111111111111"
	url, logs := serve(t, encodeConfig("ci:"+ciToken))
	auth := "Bearer " + ciToken
	original := jsonPayload(`{"email":"` + sentinel + `"}`)

	r := call(t, http.MethodPost, url+"/default/encode", payloadsJSON(t, original), "Authorization", "Bearer "+encodeToken)
	if r.status != http.StatusOK {
		t.Fatalf("encode: status %d: %s", r.status, r.body)
	}
	encoded := parsePayloads(t, r.body)
	r = call(t, http.MethodPost, url+"/default/decode", payloadsJSON(t, encoded...), "Authorization", auth)
	if r.status != http.StatusOK || !strings.Contains(r.body, base64.StdEncoding.EncodeToString(original.Data)) {
		t.Fatalf("decode: status %d, %s: want the original payload", r.status, r.body)
	}

	// Altered data: reverseCodec's error quotes it.
	tampered := &commonpb.Payload{
		Metadata: map[string][]byte{converter.MetadataEncoding: []byte(testEncoding)},
		Data:     []byte("XX" + sentinel),
	}
	r = call(t, http.MethodPost, url+"/default/decode", payloadsJSON(t, tampered), "Authorization", auth)
	if r.status != http.StatusBadRequest {
		t.Errorf("tampered payload: status %d, want the SDK handler's 400", r.status)
	}
	if strings.Contains(r.body, sentinel) || strings.Contains(r.body, "not ours") {
		t.Errorf("the answer to a codec error passes the codec's error on: %q", r.body)
	}
	if line := logs.lastAudit(t); !strings.Contains(line, `"status":400`) || !strings.Contains(line, `"payloads":1`) {
		t.Errorf("audit line %s should record the failed decode", line)
	}

	log := logs.String()
	for name, secret := range map[string]string{
		"the payload":                  sentinel,
		"the payload, base64":          base64.StdEncoding.EncodeToString(original.Data),
		"the encoded payload, base64":  base64.StdEncoding.EncodeToString(encoded[0].Data),
		"the tampered payload, base64": base64.StdEncoding.EncodeToString(tampered.Data),
		"the token":                    ciToken,
		"the encode token":             encodeToken,
	} {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds %s:\n%s", name, log)
		}
	}
	if n := len(logs.auditLines()); n != 3 {
		t.Errorf("%d audit lines for 3 calls:\n%s", n, log)
	}
}

func TestNewRefusesBadSettings(t *testing.T) {
	discard := slog.New(slog.DiscardHandler)
	for name, mutate := range map[string]func(*config.CodecServer){
		"short token":         func(c *config.CodecServer) { c.AuthTokens = []string{"ci:short"} },
		"short encode token":  func(c *config.CodecServer) { c.EncodeAuthTokens = []string{"ops:short"} },
		"token in both lists": func(c *config.CodecServer) { c.EncodeAuthTokens = []string{"ops:" + bareToken} },
		"claim, no issuer":    func(c *config.CodecServer) { c.DecodeRequireClaims = []string{"groups=kyc-ops"} },
		"issuer, no audience": func(c *config.CodecServer) { c.OIDCIssuer = "https://issuer.example" },
		"wildcard origin":     func(c *config.CodecServer) { c.CORSOrigins = []string{"*"} },
		"no body cap":         func(c *config.CodecServer) { c.MaxBodyBytes = 0 },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(bareToken)
			mutate(&cfg)
			if _, err := New(cfg, reverseCodec{}, discard); err == nil {
				t.Error("New accepted it")
			}
		})
	}
	if _, err := New(testConfig(), nil, discard); err == nil {
		t.Error("New accepted no codec")
	}
}
