package fakedidit

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// handlerFunc serves one matched route; ids are the path's {uuid} segments.
type handlerFunc func(w http.ResponseWriter, r *http.Request, ids []string)

// route is one URL pattern: segments "{id}" match a lowercase UUID, as
// Django's uuid path converter does.
type route struct {
	pattern string
	methods map[string]handlerFunc
}

func (s *Server) routes() []route {
	return []route{
		{"/v3/session/{id}/decision/", map[string]handlerFunc{http.MethodGet: s.getDecision}},
		{"/v3/sessions/", map[string]handlerFunc{http.MethodGet: s.listSessions}},
		{"/v3/session/{id}/webhooks/", map[string]handlerFunc{http.MethodGet: s.listSessionWebhooks}},
		{"/v3/session/{id}/webhook/{id}/resend", map[string]handlerFunc{http.MethodPost: s.resendSessionWebhook}},
		{"/v3/session/{id}/update-aml-hit-status/", map[string]handlerFunc{http.MethodPatch: s.updateHit}},
		{"/v3/session/{id}/bulk-update-aml-hit-status/", map[string]handlerFunc{http.MethodPatch: s.bulkUpdateHits}},
		{"/v3/webhook/", map[string]handlerFunc{http.MethodGet: s.getLegacy, http.MethodPatch: s.patchLegacy}},
		{"/v3/webhook/destinations/", map[string]handlerFunc{http.MethodGet: s.listDestinations, http.MethodPost: s.createDestination}},
		{"/v3/webhook/destinations/{id}/", map[string]handlerFunc{
			http.MethodGet: s.getDestination, http.MethodPatch: s.patchDestination, http.MethodDelete: s.deleteDestination,
		}},
		{"/v3/webhook/destinations/{id}/deliveries/", map[string]handlerFunc{http.MethodGet: s.listDestinationDeliveries}},
		{"/v3/webhook/destinations/{id}/deliveries/{id}/", map[string]handlerFunc{http.MethodGet: s.getDestinationDelivery}},
		{"/v3/webhook/destinations/{id}/deliveries/{id}/resend/", map[string]handlerFunc{http.MethodPost: s.resendDestinationDelivery}},
		{"/v3/session/", map[string]handlerFunc{http.MethodPost: s.createSession}},
		{harnessSessions, map[string]handlerFunc{http.MethodPost: s.registerSession}},
	}
}

// harnessSessions is the harness's own endpoint (see the package doc).
const harnessSessions = "/_harness/sessions/"

// Handler returns the API and the hosted verification pages. Like Django,
// the API resolves the URL first (unknown or malformed: HTML 404; missing
// trailing slash: 301), then authenticates (403 without a key, 401 with a
// wrong one), then throttles (429), then checks the method (405). The
// pages, at /session/<token>, are a browser's: they take no key.
func (s *Server) Handler() http.Handler {
	routes := s.routes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, hostedPrefix) {
			s.servePage(w, r)
			return
		}
		rt, ids, ok := resolve(routes, r.URL.Path)
		if !ok {
			if _, _, slash := resolve(routes, r.URL.Path+"/"); slash && !strings.HasSuffix(r.URL.Path, "/") {
				redirectSlash(w, r)
				return
			}
			notFoundHTML(w)
			return
		}
		s.mu.Lock()
		s.calls[r.Method+" "+rt.pattern]++
		s.mu.Unlock()
		if !s.authorized(r) {
			// The text SPEC §4.3 quotes; Didit's docs give 403 when no key
			// was sent and 401 for a wrong one (SPEC §4.4).
			status := http.StatusUnauthorized
			if r.Header.Get("X-Api-Key") == "" {
				status = http.StatusForbidden
			}
			writeJSON(w, status, detail("Authentication credentials were not provided or are invalid."))
			return
		}
		if rt.pattern != harnessSessions && s.throttled() {
			throttle(w, r)
			return
		}
		h, ok := rt.methods[r.Method]
		if !ok {
			writeJSON(w, http.StatusMethodNotAllowed, detail(fmt.Sprintf("Method %q not allowed.", r.Method)))
			return
		}
		h(w, r, ids)
	})
}

func resolve(routes []route, path string) (route, []string, bool) {
	for _, rt := range routes {
		if ids, ok := match(rt.pattern, path); ok {
			return rt, ids, true
		}
	}
	return route{}, nil, false
}

func match(pattern, path string) ([]string, bool) {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return nil, false
	}
	var ids []string
	for i, p := range ps {
		switch {
		case p == "{id}" && isUUID(xs[i]):
			ids = append(ids, xs[i])
		case p != xs[i]:
			return nil, false
		}
	}
	return ids, true
}

// isUUID accepts Django's uuid converter syntax: lowercase, hyphenated.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}

func (s *Server) authorized(r *http.Request) bool {
	key := r.Header.Get("X-Api-Key")
	return key != "" && subtle.ConstantTimeCompare([]byte(key), []byte(s.opts.Key)) == 1
}

// throttled counts the request and reports whether it is the Nth.
func (s *Server) throttled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	return s.opts.RateLimitEvery > 0 && s.requests%s.opts.RateLimitEvery == 0
}

func throttle(w http.ResponseWriter, r *http.Request) {
	limit := "300"
	if r.Method == http.MethodGet {
		limit = "600"
	}
	h := w.Header()
	h.Set("Retry-After", "1")
	h.Set("X-RateLimit-Limit", limit)
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-Reset", "1")
	writeJSON(w, http.StatusTooManyRequests, detail("Request was throttled. Expected available in 1 second."))
}

// redirectSlash is Django's APPEND_SLASH: a 301 to the same URL with a
// slash, whatever the method (a client that follows it turns a POST or a
// PATCH into a GET).
func redirectSlash(w http.ResponseWriter, r *http.Request) {
	u := url.URL{Scheme: scheme(r), Host: r.Host, Path: r.URL.Path + "/", RawQuery: r.URL.RawQuery}
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusMovedPermanently)
}

const notFoundPage = `<!doctype html>
<html lang="en">
<head>
  <title>Not Found</title>
</head>
<body>
  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>
</body>
</html>
`

func notFoundHTML(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(notFoundPage))
}

func detail(msg string) map[string]string { return map[string]string{"detail": msg} }

func notFoundJSON(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, detail("Not found."))
}

// fieldError answers 400 the way Django REST framework reports one field.
func fieldError(w http.ResponseWriter, field, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string][]string{field: {msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// readJSON decodes a request body into v, answering 400 on failure.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	return decodeJSON(w, r, v, 1<<20)
}

// decodeJSON is readJSON for a body of up to limit bytes.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, limit int64) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, detail("JSON parse error - "+err.Error()))
		return false
	}
	return true
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// page is LimitOffset pagination of n items, as Django REST framework does
// it: default limit 50, invalid values ignored, absolute next/previous
// links built from the request's Host keeping every other parameter.
type page struct {
	offset, limit int
	next, prev    *string
}

func paginate(r *http.Request, n int) page {
	q := r.URL.Query()
	p := page{limit: 50}
	if v, err := strconv.Atoi(q.Get("limit")); err == nil && v > 0 {
		p.limit = v
	}
	if v, err := strconv.Atoi(q.Get("offset")); err == nil && v > 0 {
		p.offset = v
	}
	link := func(offset int) *string {
		q := r.URL.Query()
		q.Set("limit", strconv.Itoa(p.limit))
		if offset > 0 {
			q.Set("offset", strconv.Itoa(offset))
		} else {
			q.Del("offset")
		}
		u := url.URL{Scheme: scheme(r), Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}
		s := u.String()
		return &s
	}
	if p.offset+p.limit < n {
		p.next = link(p.offset + p.limit)
	}
	if p.offset > 0 {
		p.prev = link(max(p.offset-p.limit, 0))
	}
	return p
}

// window returns the page's slice bounds within n items.
func (p page) window(n int) (int, int) {
	lo := min(p.offset, n)
	return lo, min(lo+p.limit, n)
}

func (p page) body(count int, results any) map[string]any {
	return map[string]any{"count": count, "next": p.next, "previous": p.prev, "results": results}
}
