package chaos

// Hostile and malformed deliveries for POST /webhooks/didit, each with the
// exact status the receiver must answer, and a runner that fires them at a
// live receiver. None of them may change any state: a delivery that wrongly
// got through would be signalled to Temporal, so every well-formed event is,
// by its body, a console test delivery (Didit's test vendor_data and no
// event_id, SPEC §2.5). A receiver that behaves refuses it before that matters; one that
// wrongly accepts it answers 200 ("test delivery acknowledged") instead of
// starting a workflow, and the run reports the wrong status rather than
// leaving a workflow behind.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/diditflow/diditflow/didit"
)

// BadInput is one hostile delivery and the answer it must get.
//
// It is sent in one of three ways: Raw, when set, is written byte for byte on
// a fresh TCP connection (for what net/http's client refuses to send); else
// Stream, when set, is sent as a body without Content-Length, slowly; else
// Body is sent with its Content-Length.
type BadInput struct {
	Name string
	// WantStatus is the exact status the receiver must answer.
	WantStatus int
	// Why says which check must produce WantStatus.
	Why string

	Method string // "" means POST
	Path   string // "" means BadInputPath
	Header http.Header
	Body   []byte
	Stream *BadInputStream

	// Raw is a whole hand-written HTTP/1.1 request. Its Host header is a
	// placeholder: the server does not look at it.
	Raw []byte
}

// BadInputStream is a body sent in Chunk-byte pieces every Every, without
// Content-Length (chunked), until Size bytes are sent or the server answers.
type BadInputStream struct {
	Size  int64
	Chunk int
	Every time.Duration
	Fill  byte
}

// BadInputResult is what one input got. Got is 0 when no answer was read,
// and Err then says why.
type BadInputResult struct {
	Name      string
	Want, Got int
	Err       error
}

// OK reports whether the input got the answer it must get.
func (r BadInputResult) OK() bool { return r.Err == nil && r.Got == r.Want }

func (r BadInputResult) String() string {
	if r.Err != nil {
		return fmt.Sprintf("%s: want %d, error: %v", r.Name, r.Want, r.Err)
	}
	return fmt.Sprintf("%s: want %d, got %d", r.Name, r.Want, r.Got)
}

const (
	// BadInputPath is the webhook route under attack.
	BadInputPath = "/webhooks/didit"
	// BadInputTimeout bounds each input, the slow 100 MB body included.
	BadInputTimeout = 5 * time.Second
	// BadInputRunTimeout bounds a whole SendBadInputs run.
	BadInputRunTimeout = 90 * time.Second

	// badInputCap is the receiver's default body cap (MAX_BODY_BYTES).
	badInputCap = 1 << 20
	// badInputDepth is the nesting of the deep-nesting bodies, far beyond
	// didit.MaxDepth (512) and encoding/json's 10000.
	badInputDepth = 100_000
	// badInputSession prefixes every session_id, so that anything that
	// leaks into Temporal is recognisable.
	badInputSession = "chaos-badinput-"
)

// BadInputs returns the corpus. secret is a valid webhook secret the
// receiver accepts; now is the receiver's clock.
//
// Every body is signed (when it is) at now, so the only failing check is the
// one the case is about. The stale and future cases sit 1 s beyond the 300 s
// tolerance: against a receiver on the wall clock, call BadInputs right
// before SendBadInputs (the future case needs the receiver's clock to still
// read now's second; its test-delivery body keeps it harmless if it does not).
// The 413 cases assume the default 1 MiB cap (MAX_BODY_BYTES unset), and the
// raw cases need an http:// baseURL.
func BadInputs(secret string, now time.Time) []BadInput {
	b := badBuilder{secret: secret, now: now.Unix()}
	ts := b.now

	event := b.event(ts, "Approved", "status.updated")
	ignored := b.event(ts, "FLAGGED", "user.status.updated")
	notJSON := []byte("timestamp=" + strconv.FormatInt(ts, 10) + "&session_id=" + badInputSession + "form&status=Approved")
	array := []byte("[" + string(event) + "]")
	deep := append(bytes.Repeat([]byte("["), badInputDepth), bytes.Repeat([]byte("]"), badInputDepth)...)
	deepMember := badWith(event, `"metadata":`+string(deep))
	invalidUTF8 := badWith(event, `"vendor_data":"user-`+"\xff\xfe\xc3\x28"+`"`)
	hugeNumber := badWith(event, `"score":1e400`)
	dupKeys := badWith(event, `"session_id":"`+badInputSession+`duplicate"`)
	numericSession := b.event(ts, "Approved", "status.updated", `"session_id":123456`)
	noType := b.event(ts, "Approved", "")
	unknownStatus := b.event(ts, "Hacked", "status.updated")
	// A minute past the tolerance: the corpus is built a moment before it is
	// sent, against a receiver on the real clock (the exact edge, ±300 s
	// accepted and ±301 s refused, is pinned by the didit package's tests).
	stale := b.event(ts-360, "Approved", "status.updated")
	future := b.event(ts+360, "Approved", "status.updated")
	otherTS := b.event(ts-60, "Approved", "status.updated")
	oversized := append(append([]byte{}, event[:len(event)-1]...), bytes.Repeat([]byte(" "), badInputCap+1-len(event))...)
	oversized = append(oversized, '}')

	signed := b.sign(event)
	tsHeader := strconv.FormatInt(ts, 10)
	unauthorized := http.StatusUnauthorized
	badRequest := http.StatusBadRequest

	var in []BadInput
	add := func(name string, want int, why string, body []byte, h didit.Headers) {
		in = append(in, BadInput{Name: name, WantStatus: want, Why: why, Header: badHeader(h), Body: body})
	}

	// Signature failures.
	add("signature: X-Signature is valid hex but wrong", unauthorized, "ErrSignatureMismatch",
		event, didit.Headers{Signature: b.forge(event), Timestamp: tsHeader})
	add("signature: all three schemes forged", unauthorized, "ErrSignatureMismatch",
		event, b.forged(event, tsHeader))
	add("signature: no signature header, only X-Timestamp", unauthorized, "ErrNoSignature",
		event, didit.Headers{Timestamp: tsHeader})
	add("signature: X-Signature is 64 non-hex characters", unauthorized, "ErrMalformedSignature",
		event, didit.Headers{Signature: strings.Repeat("zz", 32), Timestamp: tsHeader})
	add("signature: X-Signature is the valid MAC cut to 63 hex digits", unauthorized, "ErrMalformedSignature",
		event, didit.Headers{Signature: signed.Signature[:63], Timestamp: tsHeader})
	add("signature: sha256= prefix on the valid MAC", unauthorized, "ErrMalformedSignature",
		event, didit.Headers{Signature: "sha256=" + signed.Signature, Timestamp: tsHeader})
	add("signature: malformed X-Signature next to a valid X-Signature-V2", unauthorized,
		"ErrMalformedSignature: one malformed header fails the delivery",
		event, didit.Headers{Signature: "not-a-mac", SignatureV2: signed.SignatureV2, Timestamp: tsHeader})

	// Timestamp failures, each on a correctly signed body.
	add("timestamp: stale, now-360s", unauthorized, "ErrTimestampTooOld", stale, b.sign(stale))
	add("timestamp: future, now+360s", unauthorized, "ErrTimestampInFuture", future, b.sign(future))
	add("timestamp: X-Timestamp missing", unauthorized, "ErrMissingTimestamp",
		event, didit.Headers{Signature: signed.Signature, SignatureV2: signed.SignatureV2})
	add("timestamp: X-Timestamp is not decimal", unauthorized, "ErrInvalidTimestamp",
		event, didit.Headers{Signature: signed.Signature, Timestamp: tsHeader + ".0"})
	otherSigned := b.sign(otherTS)
	otherSigned.Timestamp = tsHeader
	add("timestamp: X-Timestamp differs from the signed body's", unauthorized, "ErrTimestampMismatch",
		otherTS, otherSigned)

	// Bodies.
	add("body: empty, unsigned", unauthorized, "ErrNoSignature", nil, didit.Headers{Timestamp: tsHeader})
	add("body: empty, X-Signature over zero bytes", badRequest, "authentic but not a JSON object",
		nil, b.rawSigned(nil, tsHeader))
	add("body: 1 MiB + 1 with Content-Length", http.StatusRequestEntityTooLarge, "Content-Length over the cap",
		oversized, b.rawSigned(oversized, tsHeader))
	in = append(in, BadInput{
		Name: "body: 100 MB sent slowly without Content-Length", WantStatus: http.StatusRequestEntityTooLarge,
		Why:    "MaxBytesReader trips after 1 MiB",
		Header: badHeader(b.forged(nil, tsHeader)),
		Stream: &BadInputStream{Size: 100 << 20, Chunk: 64 << 10, Every: 2 * time.Millisecond, Fill: ' '},
	})
	add("body: not JSON, X-Signature over the raw bytes", badRequest, "authentic but not a JSON object",
		notJSON, b.rawSigned(notJSON, tsHeader))
	add("body: JSON array, X-Signature", badRequest, "authentic but not a JSON object",
		array, b.rawSigned(array, tsHeader))
	add("body: JSON array, X-Signature-V2 only", badRequest, "authentic (canonical form) but not a JSON object",
		array, didit.Headers{SignatureV2: b.mac(badCanonical(array)), Timestamp: tsHeader})
	add("body: 100000-deep [[[...]]], forged", unauthorized, "V2 parser refuses depth > 512; no MAC matches",
		deep, b.forged(deep, tsHeader))
	add("body: 100000-deep [[[...]]], X-Signature", badRequest, "authentic but not a JSON object",
		deep, b.rawSigned(deep, tsHeader))
	add("body: event with a 100000-deep member, X-Signature", badRequest, "timestamp scan refuses depth > 512",
		deepMember, b.rawSigned(deepMember, tsHeader))
	add("body: invalid UTF-8 in a string, forged", unauthorized, "V2 parser refuses it; no MAC matches",
		invalidUTF8, b.forged(invalidUTF8, tsHeader))
	add("body: number 1e400, forged", unauthorized, "V2 canonicalisation refuses it; no MAC matches",
		hugeNumber, b.forged(hugeNumber, tsHeader))
	add("body: duplicate session_id, forged", unauthorized, "no MAC matches",
		dupKeys, b.forged(dupKeys, tsHeader))
	add("body: session_id is a number, signed", badRequest, "ErrNotDiditEvent: no session_id string",
		numericSession, b.sign(numericSession))
	add("body: no webhook_type, signed", badRequest, "ErrNotDiditEvent: no webhook_type string",
		noType, b.sign(noType))
	add("status: unknown session status, forged", unauthorized, "no MAC matches",
		unknownStatus, b.forged(unknownStatus, tsHeader))

	// Authentic deliveries that must be acknowledged without Temporal.
	add("type: unknown webhook_type user.status.updated, signed", http.StatusOK, "ignored webhook type",
		ignored, b.sign(ignored))
	add("console test delivery, signed", http.StatusOK, "X-Didit-Test-Webhook: true",
		event, signed)

	// Routing.
	in = append(in,
		BadInput{Name: "route: GET /webhooks/didit", WantStatus: http.StatusMethodNotAllowed, Why: "POST only",
			Method: http.MethodGet},
		BadInput{Name: "route: PUT /webhooks/didit, signed event", WantStatus: http.StatusMethodNotAllowed, Why: "POST only",
			Method: http.MethodPut, Header: badHeader(signed), Body: event},
		BadInput{Name: "route: POST /webhooks/unknown, signed event", WantStatus: http.StatusNotFound, Why: "no route",
			Path: "/webhooks/unknown", Header: badHeader(signed), Body: event},
		BadInput{Name: "route: POST /webhooks/didit/ (trailing slash), signed event", WantStatus: http.StatusOK,
			Why:  "served like /webhooks/didit: Didit follows no redirect",
			Path: BadInputPath + "/", Header: badHeader(signed), Body: event},
	)

	// Hand-written HTTP/1.1. The body is the signed, ignored event, so each
	// reading of the request gives a different answer: 200 when the headers
	// reach the handler as sent, 401 when they arrive mangled, 400/501/431
	// when net/http refuses the request itself.
	ig := b.sign(ignored)
	igHeaders := func() []string {
		return []string{
			"X-Signature: " + ig.Signature,
			"X-Timestamp: " + ig.Timestamp,
			"Content-Type: application/json",
		}
	}
	cl := "Content-Length: " + strconv.Itoa(len(ignored))
	raw := func(name string, want int, why string, headers []string, body []byte) {
		in = append(in, BadInput{Name: "raw: " + name, WantStatus: want, Why: why, Raw: badRaw(headers, body)})
	}
	raw("well-formed control request", http.StatusOK, "the raw sender itself works",
		append(igHeaders(), cl), ignored)
	raw("bare CR inside X-Timestamp, smuggling X-Signature", badRequest, "net/http: invalid header value",
		[]string{"X-Timestamp: " + ig.Timestamp + "\rX-Signature: " + ig.Signature, "Content-Type: application/json", cl}, ignored)
	raw("NUL inside a header value", badRequest, "net/http: invalid header value",
		append(igHeaders(), cl, "X-Note: a\x00b"), ignored)
	raw("bare LF between headers", http.StatusOK, "net/http takes a bare LF as a line end: two real headers",
		[]string{"X-Timestamp: " + ig.Timestamp + "\nX-Signature: " + ig.Signature, "Content-Type: application/json", cl}, ignored)
	raw("obs-fold continuation inside X-Signature", unauthorized,
		"net/http folds to \"<half> <half>\": 65 characters, ErrMalformedSignature",
		[]string{"X-Signature: " + ig.Signature[:32] + "\r\n " + ig.Signature[32:], "X-Timestamp: " + ig.Timestamp, cl}, ignored)
	raw("obs-fold continuation as the first header line", badRequest, "net/http: malformed MIME header initial line",
		append([]string{" X-Folded: yes"}, append(igHeaders(), cl)...), ignored)
	raw("space before the colon of a header name", badRequest, "net/http: malformed MIME header line",
		append(igHeaders(), cl, "X-Signature-V2 : "+strings.Repeat("0", 64)), ignored)
	raw("two different Content-Length", badRequest, "net/http: multiple Content-Length",
		append(igHeaders(), cl, "Content-Length: "+strconv.Itoa(len(ignored)+1)), ignored)
	raw("two identical Content-Length", http.StatusOK, "net/http keeps one of equal duplicates",
		append(igHeaders(), cl, cl), ignored)
	raw("Content-Length with a sign", badRequest, "net/http: bad Content-Length",
		append(igHeaders(), "Content-Length: +"+strconv.Itoa(len(ignored))), ignored)
	raw("Transfer-Encoding: chunked with a conflicting Content-Length", http.StatusOK,
		"net/http lets chunked win and drops Content-Length (RFC 9112 6.3)",
		append(igHeaders(), "Content-Length: 5", "Transfer-Encoding: chunked"), badChunked(ignored))
	raw("Transfer-Encoding: gzip, chunked", http.StatusNotImplemented, "net/http: unsupported transfer encoding",
		append(igHeaders(), "Transfer-Encoding: gzip, chunked"), badChunked(ignored))
	raw("two Transfer-Encoding headers", http.StatusNotImplemented, "net/http: too many transfer encodings",
		append(igHeaders(), "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"), badChunked(ignored))
	raw("2 MiB header", http.StatusRequestHeaderFieldsTooLarge, "net/http: over MaxHeaderBytes (1 MiB)",
		append(igHeaders(), cl, "X-Pad: "+strings.Repeat("a", 2<<20)), ignored)
	return in
}

// badBuilder builds and signs the corpus's bodies.
type badBuilder struct {
	secret string
	now    int64
}

// event is a well-formed session event signed at ts, with members in the
// sorted order Didit sends them. extra members are raw `"name":value` text
// that replace the member of the same name; webhookType "" leaves it out.
func (b badBuilder) event(ts int64, status, webhookType string, extra ...string) []byte {
	t := strconv.FormatInt(ts, 10)
	members := []string{
		`"application_id":"chaos-badinput"`,
		`"created_at":` + t,
		`"environment":"live"`,
		`"metadata":{"test_webhook":true}`,
		`"session_id":"` + badInputSession + `session"`,
		`"status":` + strconv.Quote(status),
		`"timestamp":` + t,
		`"vendor_data":"` + didit.TestVendorData + `"`,
	}
	if webhookType != "" {
		members = append(members, `"webhook_type":`+strconv.Quote(webhookType))
	}
	for _, x := range extra {
		if x == "" {
			continue
		}
		name := x[:strings.IndexByte(x, ':')+1]
		for i, m := range members {
			if strings.HasPrefix(m, name) {
				members[i] = x
				x = ""
				break
			}
		}
		if x != "" {
			members = append(members, x)
		}
	}
	return []byte("{" + strings.Join(members, ",") + "}")
}

// badWith appends raw member text to an object body; no member replaces
// another, so it can also make duplicates.
func badWith(obj []byte, members ...string) []byte {
	out := append([]byte{}, obj[:len(obj)-1]...)
	for _, m := range members {
		out = append(out, ',')
		out = append(out, m...)
	}
	return append(out, '}')
}

// sign returns the three headers Didit would send with body.
func (b badBuilder) sign(body []byte) didit.Headers {
	h, err := didit.Signer{Secret: b.secret}.Sign(body)
	if err != nil {
		panic(fmt.Sprintf("chaos: corpus body does not sign: %v", err))
	}
	return h
}

func (b badBuilder) mac(msg []byte) string {
	m := hmac.New(sha256.New, []byte(b.secret))
	m.Write(msg)
	return hex.EncodeToString(m.Sum(nil))
}

// forge is a MAC of body under a secret the receiver does not know.
func (b badBuilder) forge(body []byte) string {
	m := hmac.New(sha256.New, []byte("forged:"+b.secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// rawSigned is a valid X-Signature over the exact bytes, with X-Timestamp.
func (b badBuilder) rawSigned(body []byte, ts string) didit.Headers {
	return didit.Headers{Signature: b.mac(body), Timestamp: ts}
}

// forged sets all three signature headers, well-formed and wrong, so that
// the receiver runs its JSON parser on the body before refusing it.
func (b badBuilder) forged(body []byte, ts string) didit.Headers {
	return didit.Headers{
		Signature:       b.forge(body),
		SignatureV2:     b.forge(append([]byte("v2:"), body...)),
		SignatureSimple: b.forge(append([]byte("simple:"), body...)),
		Timestamp:       ts,
	}
}

func badCanonical(body []byte) []byte {
	c, err := didit.Canonical(body)
	if err != nil {
		panic(fmt.Sprintf("chaos: corpus body has no canonical form: %v", err))
	}
	return c
}

// badHeader turns signature headers into request headers.
func badHeader(h didit.Headers) http.Header {
	out := http.Header{"Content-Type": {"application/json"}}
	h.Set(out)
	return out
}

// badRaw writes a POST to the webhook with the given header lines, verbatim,
// right after the request line (then Host and Connection: close).
func badRaw(headers []string, body []byte) []byte {
	var w bytes.Buffer
	w.WriteString("POST " + BadInputPath + " HTTP/1.1\r\n")
	for _, h := range headers {
		w.WriteString(h + "\r\n")
	}
	w.WriteString("Host: diditflow.invalid\r\nConnection: close\r\n\r\n")
	w.Write(body)
	return w.Bytes()
}

// badChunked frames body as one chunk and the last chunk.
func badChunked(body []byte) []byte {
	return []byte(strconv.FormatInt(int64(len(body)), 16) + "\r\n" + string(body) + "\r\n0\r\n\r\n")
}

// SendBadInputs sends every input to baseURL (e.g. "http://127.0.0.1:8080")
// and returns the results, in order. It never hangs: each input has
// BadInputTimeout, the run BadInputRunTimeout (or ctx's earlier deadline),
// and inputs left when the run's time is up get ctx's error.
func SendBadInputs(ctx context.Context, baseURL string, inputs []BadInput) []BadInputResult {
	ctx, cancel := context.WithTimeout(ctx, BadInputRunTimeout)
	defer cancel()
	base := strings.TrimRight(baseURL, "/")
	results := make([]BadInputResult, len(inputs))
	for i, in := range inputs {
		results[i] = BadInputResult{Name: in.Name, Want: in.WantStatus}
		if err := ctx.Err(); err != nil {
			results[i].Err = err
			continue
		}
		one, cancelOne := context.WithTimeout(ctx, BadInputTimeout)
		var got int
		var err error
		switch {
		case in.Raw != nil:
			got, err = badSendRaw(one, base, in.Raw)
		default:
			got, err = badSendHTTP(one, base, in)
		}
		cancelOne()
		results[i].Got, results[i].Err = got, err
	}
	return results
}

var errBadInputAnswered = errors.New("chaos: server answered; body no longer needed")

// badSendHTTP sends one input on a connection of its own. Keep-alives stay
// on, as with Didit's client: a request announcing Connection: close makes
// net/http hang up on an unread large body without the lingering close, and
// the 413 is then often lost to a TCP reset (see the report).
func badSendHTTP(ctx context.Context, base string, in BadInput) (int, error) {
	transport := &http.Transport{
		Proxy:              nil,
		DisableCompression: true,
		DialContext:        (&net.Dialer{Timeout: BadInputTimeout}).DialContext,
	}
	defer transport.CloseIdleConnections()
	c := &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	method := in.Method
	if method == "" {
		method = http.MethodPost
	}
	path := in.Path
	if path == "" {
		path = BadInputPath
	}
	var body io.Reader
	if in.Body != nil {
		body = bytes.NewReader(in.Body)
	}
	var pr *io.PipeReader
	var pw *io.PipeWriter
	if in.Stream != nil {
		pr, pw = io.Pipe()
		body = pr
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return 0, err
	}
	for k, vs := range in.Header {
		req.Header[k] = append([]string(nil), vs...)
	}

	var writerDone chan struct{}
	if in.Stream != nil {
		req.ContentLength = -1 // chunked: no Content-Length to refuse early
		stop := make(chan struct{})
		writerDone = make(chan struct{})
		go badStream(ctx, pw, *in.Stream, stop, writerDone)
		defer func() {
			// Stop writing as soon as there is an answer (or none will come):
			// closing the reader unblocks a Write the transport no longer reads.
			close(stop)
			pr.CloseWithError(errBadInputAnswered)
			<-writerDone
		}()
	}

	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// badStream writes s.Size bytes into pw, s.Chunk at a time every s.Every,
// until done, stopped, or ctx ends.
func badStream(ctx context.Context, pw *io.PipeWriter, s BadInputStream, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	chunk := bytes.Repeat([]byte{s.Fill}, max(s.Chunk, 1))
	tick := time.NewTicker(max(s.Every, time.Millisecond))
	defer tick.Stop()
	for sent := int64(0); sent < s.Size; {
		select {
		case <-stop:
			pw.CloseWithError(errBadInputAnswered)
			return
		case <-ctx.Done():
			pw.CloseWithError(ctx.Err())
			return
		case <-tick.C:
		}
		n := min(int64(len(chunk)), s.Size-sent)
		if _, err := pw.Write(chunk[:n]); err != nil {
			return
		}
		sent += n
	}
	pw.Close()
}

// badSendRaw writes raw on a fresh TCP connection to base's host and reads
// one response. The write runs alongside the read: the server may answer
// (and stop reading) before the request is all sent.
func badSendRaw(ctx context.Context, base string, raw []byte) (int, error) {
	u, err := url.Parse(base)
	if err != nil {
		return 0, err
	}
	if u.Scheme != "http" {
		return 0, fmt.Errorf("chaos: raw inputs need an http:// base URL, not %q", base)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	// Unblock the read and the write if ctx ends before the deadline.
	stopAfter := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stopAfter()

	writeErr := make(chan error, 1)
	go func() {
		_, err := conn.Write(raw)
		writeErr <- err
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		_ = conn.Close()
		if werr := <-writeErr; werr != nil {
			return 0, fmt.Errorf("%w (write: %v)", err, werr)
		}
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	_ = conn.Close() // unblocks a write the server no longer reads
	<-writeErr
	return resp.StatusCode, nil
}
