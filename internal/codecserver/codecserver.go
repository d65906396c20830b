// Package codecserver serves diditflow's payload codec over HTTP so that the
// Temporal UI and CLI can show the histories it encrypted: the codec server
// protocol of Temporal's codec-server sample, POST /{namespace}/decode and
// /{namespace}/encode, or /decode and /encode with an X-Namespace header.
// The SDK's converter.NewPayloadCodecHTTPHandler does the codec work; this
// package puts around it what a server handing out decrypted personal data
// needs: bearer-token and OIDC auth, each operation authorised on its own
// (its own static tokens, the OIDC claims it requires), CORS for the UI, a
// body cap, request validation, and one audit log line per call that names
// the caller and the workflow they say they read, but never a payload or a
// token.
//
// A main wires it up and does nothing else:
//
//	cfg, err := config.LoadCodecServer()
//	// ...
//	log := cfg.Log.NewLogger()
//	payloadCodec := ... // the codec built from cfg.Encryption (internal/codec)
//	h, err := codecserver.New(cfg, payloadCodec, log)
//	if err != nil { // bad settings, no auth off loopback, OIDC issuer unreachable
//		log.Error("codec server", "error", err)
//		os.Exit(1)
//	}
//	srv := codecserver.NewHTTPServer(cfg, h, log)
//	// srv.ListenAndServe(), and srv.Shutdown on SIGTERM
//
// New refuses a configuration that Check refuses, so a main need not call
// Check itself; Check is there for a main's or a test's own reporting.
package codecserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.temporal.io/sdk/converter"

	"github.com/diditflow/diditflow/internal/config"
)

// ErrNoAuth is Check's error for a server that would serve decrypted
// payloads, without auth, to whoever can reach a non-loopback address.
var ErrNoAuth = errors.New("codec server: no auth configured on a non-loopback address")

// Exposure says who can reach the codec server's decrypted payloads.
type Exposure struct {
	// Loopback is set when CODEC_ADDR's host is localhost or a loopback IP.
	Loopback bool
	// Auth is set when callers must authenticate (CODEC_AUTH_TOKEN or
	// CODEC_OIDC_ISSUER).
	Auth bool
	// Insecure is set when the server serves without auth off loopback
	// because CODEC_INSECURE allows it.
	Insecure bool
}

// Check tells how cfg exposes the server, and refuses with ErrNoAuth a
// non-loopback address without auth unless CODEC_INSECURE is set.
func Check(cfg config.CodecServer) (Exposure, error) {
	e := Exposure{Loopback: cfg.Loopback(), Auth: cfg.AuthConfigured()}
	if !e.Loopback && !e.Auth {
		if !cfg.Insecure {
			return e, fmt.Errorf("%w: CODEC_ADDR %q is reachable from other hosts, so set CODEC_AUTH_TOKEN or "+
				"CODEC_OIDC_ISSUER and CODEC_OIDC_AUDIENCE, listen on 127.0.0.1, or set CODEC_INSECURE=true "+
				"(a local docker-compose only: anyone who reaches it reads decrypted payloads)", ErrNoAuth, cfg.Addr)
		}
		e.Insecure = true
	}
	return e, nil
}

// oidcDiscoveryTimeout bounds New's fetch of the issuer's discovery
// document, and each later fetch of its keys.
const oidcDiscoveryTimeout = 10 * time.Second

// New returns the codec server's handler: codec, any converter.PayloadCodec
// (the AES-256-GCM one of internal/codec in production), served as cfg
// says. It checks cfg (Check, the tokens, the OIDC pair, the origins, the
// body cap) and, with an OIDC issuer, fetches its discovery document, so
// that a server that would not work, or would expose payloads, does not
// start. A nil log logs to slog.Default().
func New(cfg config.CodecServer, codec converter.PayloadCodec, log *slog.Logger) (http.Handler, error) {
	if codec == nil {
		return nil, errors.New("codec server: no payload codec")
	}
	if log == nil {
		log = slog.Default()
	}
	exposure, err := Check(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.MaxBodyBytes <= 0 {
		return nil, fmt.Errorf("codec server: CODEC_MAX_BODY_BYTES must be positive, got %d", cfg.MaxBodyBytes)
	}
	origins, err := cfg.Origins()
	if err != nil {
		return nil, fmt.Errorf("codec server: %w", err)
	}
	s := &server{
		codec:   converter.NewPayloadCodecHTTPHandler(opaqueCodec{codec}),
		origins: make(map[string]bool, len(origins)),
		maxBody: cfg.MaxBodyBytes,
		log:     log,
	}
	for _, o := range origins {
		s.origins[o] = true
	}
	if exposure.Auth {
		ctx, cancel := context.WithTimeout(context.Background(), oidcDiscoveryTimeout)
		defer cancel()
		if s.auth, err = newAuthenticator(ctx, cfg); err != nil {
			return nil, fmt.Errorf("codec server: %w", err)
		}
	}

	attrs := []any{"addr", cfg.Addr, "cors_origins", origins, "max_body_bytes", cfg.MaxBodyBytes}
	switch {
	case exposure.Insecure:
		log.Warn("codec server: serving decrypted payloads WITHOUT AUTH on a non-loopback address because CODEC_INSECURE=true; "+
			"anyone who reaches it can read them", attrs...)
	case !exposure.Auth:
		log.Info("codec server: serving without auth on loopback; callers are logged as anonymous", attrs...)
	default:
		decodeTokens, encodeTokens := s.auth.counts()
		attrs = append(attrs, "decode_tokens", decodeTokens, "encode_tokens", encodeTokens)
		if cfg.OIDCIssuer != "" {
			attrs = append(attrs, "oidc_issuer", cfg.OIDCIssuer,
				"decode_claims", cfg.DecodeRequireClaims, "encode_claims", cfg.EncodeRequireClaims)
		}
		log.Info("codec server: auth required", attrs...)
	}
	return s, nil
}

// NewHTTPServer returns the http.Server a main runs h with: on cfg.Addr,
// with timeouts that keep slow or idle clients from holding connections,
// and the server's own errors on log.
func NewHTTPServer(cfg config.CodecServer, h http.Handler, log *slog.Logger) *http.Server {
	if log == nil {
		log = slog.Default()
	}
	return &http.Server{
		Addr:              cfg.Addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// server is the handler New returns.
type server struct {
	codec   http.Handler
	auth    *authenticator // nil: open, on loopback or with CODEC_INSECURE
	origins map[string]bool
	maxBody int64
	log     *slog.Logger
}

// Headers of the CORS preflight answer: the protocol's one method, and the
// headers the UI sends: Authorization with passAccessToken and, with it,
// Authorization-Extras (its user's ID token, which the server ignores, but
// the browser makes no call whose preflight does not allow it); and
// X-Workflow-Id, for a page that names the workflow it reads.
const (
	corsAllowMethods = "POST, OPTIONS"
	corsAllowHeaders = "Authorization, Authorization-Extras, Content-Type, X-Namespace, " + workflowHeader
	corsMaxAge       = "600"
)

// workflowHeader names the workflow a caller says it is reading, for the
// audit line. Neither the UI (2.42) nor the CLI (1.5) sends one of its own;
// the CLI sends it with --codec-header X-Workflow-Id=<id>.
const workflowHeader = "X-Workflow-Id"

// maxAuditValueLen bounds a namespace or workflow ID an audit line
// records: Temporal's own limit on both.
const maxAuditValueLen = 1000

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.cors(w, r)
	op, pathNamespace, ok := route(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method == http.MethodOptions {
		// A preflight carries no credentials: it only asks what the real
		// request may send, and cors answered that for allowed origins.
		w.Header().Set("Allow", corsAllowMethods)
		w.WriteHeader(http.StatusNoContent)
		return
	}

	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	a := auditRecord{operation: op, payloads: -1}
	defer func() { s.audit(r.Context(), a, rec.status, time.Since(start)) }()

	// Decoded payloads are personal data: no cache, proxy or browser keeps them.
	rec.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		rec.Header().Set("Allow", corsAllowMethods)
		a.reason = "method " + r.Method
		http.Error(rec, "only POST is allowed", http.StatusMethodNotAllowed)
		return
	}
	// The namespace and the workflow go into the audit line of a refused
	// call too; bad ones are refused only once the caller is known.
	ns, nsErr := namespace(pathNamespace, r.Header.Get("X-Namespace"))
	a.namespace = ns
	wf, wfErr := workflowID(r.Header.Values(workflowHeader))
	a.workflow = wf
	c, err := s.authenticate(r, op)
	a.caller = c
	if err != nil {
		a.reason = err.Error()
		challenge := `Bearer realm="diditflow codec server"`
		if _, ok := errors.AsType[*forbiddenError](err); ok {
			rec.Header().Set("WWW-Authenticate", challenge+`, error="insufficient_scope"`)
			// Why goes into the audit line, not to a caller the settings do
			// not trust.
			http.Error(rec, "forbidden: this caller may not "+op, http.StatusForbidden)
			return
		}
		if !errors.Is(err, errNoToken) {
			challenge += `, error="invalid_token"`
		}
		rec.Header().Set("WWW-Authenticate", challenge)
		http.Error(rec, "unauthorized: send Authorization: Bearer <token>", http.StatusUnauthorized)
		return
	}
	for _, err := range []error{nsErr, wfErr} {
		if err != nil {
			a.reason = err.Error()
			http.Error(rec, err.Error(), http.StatusBadRequest)
			return
		}
	}
	n, err := readPayloads(w, r, s.maxBody)
	if err != nil {
		var re *requestError
		if !errors.As(err, &re) {
			re = &requestError{status: http.StatusBadRequest, reason: "could not read the body"}
		}
		a.reason = re.reason
		http.Error(rec, re.reason, re.status)
		return
	}
	a.payloads = n
	s.codec.ServeHTTP(rec, r)
	if rec.status != http.StatusOK {
		a.reason = "codec failed to " + op
	}
}

// cors adds the CORS headers of an allowed origin's request; any other
// origin gets none, so its browser keeps the answer from its page.
func (s *server) cors(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" || !s.origins[origin] {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", corsAllowMethods)
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		h.Set("Access-Control-Max-Age", corsMaxAge)
	}
}

// route splits a codec path into its operation and the namespace it names:
// "/decode" and "/encode" name none (it comes in X-Namespace), and
// "/{namespace}/decode" names one. ok is false for any other path.
func route(path string) (op, namespace string, ok bool) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	op = parts[len(parts)-1]
	if op != "decode" && op != "encode" {
		return "", "", false
	}
	switch len(parts) {
	case 1:
		return op, "", true
	case 2:
		return op, parts[0], parts[0] != ""
	}
	return "", "", false
}

// unnamedNamespace is the audit line's namespace of a call that names none.
const unnamedNamespace = "(unnamed)"

// namespace returns the namespace a call names, in its path or its
// X-Namespace header. One codec serves every namespace, so it only goes
// into the audit line; a call naming two different ones is refused, since
// its audit line could not say which it read. A call naming none is served
// as unnamedNamespace: the Temporal CLI (1.5) posts to /decode without
// X-Namespace.
func namespace(fromPath, fromHeader string) (string, error) {
	fromHeader = strings.TrimSpace(fromHeader)
	ns := fromPath
	switch {
	case fromPath == "" && fromHeader == "":
		return unnamedNamespace, nil
	case fromPath == "":
		ns = fromHeader
	case fromHeader != "" && fromHeader != fromPath:
		return fromPath, errors.New("the namespace in the path and in X-Namespace differ")
	}
	if !auditable(ns) {
		return "", errors.New("invalid namespace")
	}
	return ns, nil
}

// invalidWorkflow is the audit line's workflow of a call refused for its
// X-Workflow-Id, which the line does not repeat.
const invalidWorkflow = "(invalid)"

// workflowID returns the workflow a call says it reads, in values, its
// X-Workflow-Id headers: "" for none, and an error for several, which its
// audit line could not tell apart, or for one that no workflow ID is.
func workflowID(values []string) (string, error) {
	if len(values) == 0 {
		return "", nil
	}
	if len(values) > 1 {
		return invalidWorkflow, errors.New("more than one " + workflowHeader)
	}
	id := strings.TrimSpace(values[0])
	if !auditable(id) {
		return invalidWorkflow, fmt.Errorf("invalid %s: at most %d bytes of UTF-8 without control characters", workflowHeader, maxAuditValueLen)
	}
	return id, nil
}

// auditable reports whether s can go into an audit line as it is: bounded,
// UTF-8, and with nothing that could pass for a line of its own.
func auditable(s string) bool {
	return len(s) <= maxAuditValueLen && utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0
}

// auditRecord is what the audit line of one call says.
type auditRecord struct {
	operation string
	namespace string
	workflow  string // "" when the call names none
	caller    caller
	payloads  int // -1 until the body is read
	reason    string
}

// audit logs the one line of a call: who, which namespace, which workflow
// they say, what, how many payloads, and the answer. The payloads and the
// token stay out of it.
func (s *server) audit(ctx context.Context, a auditRecord, status int, took time.Duration) {
	if status == 0 {
		status = http.StatusOK
	}
	attrs := []slog.Attr{
		slog.String("operation", a.operation),
		slog.String("namespace", a.namespace),
		slog.String("caller", a.caller.name),
		slog.String("auth", a.caller.method),
		slog.Int("status", status),
		slog.Duration("duration", took),
	}
	if a.workflow != "" {
		attrs = append(attrs, slog.String("workflow_id", a.workflow))
	}
	if a.payloads >= 0 {
		attrs = append(attrs, slog.Int("payloads", a.payloads))
	}
	level := slog.LevelInfo
	if a.reason != "" {
		attrs = append(attrs, slog.String("reason", a.reason))
	}
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		level = slog.LevelWarn
	}
	s.log.LogAttrs(ctx, level, "codec call", attrs...)
}

// statusRecorder keeps the status a handler answered, for the audit line.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
