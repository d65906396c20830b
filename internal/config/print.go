package config

import (
	"encoding"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"time"
)

// Var is one environment variable of a settings struct, as envconfig reads it.
type Var struct {
	// Name is the variable, the field's envconfig tag (e.g. HTTP_ADDR).
	Name string
	// Default is the field's default tag; HasDefault tells an empty default
	// from none.
	Default    string
	HasDefault bool
	// Secret is set by the field's secret:"true" tag: Print hides its value.
	Secret bool
	// Value is the field's value in the struct given to Vars.
	Value reflect.Value
}

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

// Vars lists the environment variables of v, a settings struct such as
// Receiver or Worker (or a pointer to one), in field order. It walks nested
// and embedded structs (Log, HTTP) as envconfig does. A field without an
// envconfig tag is named as envconfig names it, after the field.
func Vars(v any) []Var {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		panic(fmt.Sprintf("config.Vars: %T is not a struct", v))
	}
	var vars []Var
	var walk func(reflect.Value)
	walk = func(s reflect.Value) {
		t := s.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() || f.Tag.Get("ignored") == "true" {
				continue
			}
			name := f.Tag.Get("envconfig")
			if name == "" && f.Type.Kind() == reflect.Struct && !reflect.PointerTo(f.Type).Implements(textUnmarshalerType) {
				walk(s.Field(i))
				continue
			}
			if name == "" {
				name = f.Name
			}
			def, ok := f.Tag.Lookup("default")
			vars = append(vars, Var{Name: strings.ToUpper(name), Default: def, HasDefault: ok,
				Secret: f.Tag.Get("secret") == "true", Value: s.Field(i)})
		}
	}
	walk(rv)
	return vars
}

// Print writes the settings in v (as Vars lists them) as NAME=value lines,
// one per variable, in a form envconfig reads back. Secrets are not shown:
// a list of them prints as "<N secrets>", a single one as "<set>", and a
// password in a URL (user:password@), a secret query parameter (token=...)
// or a key=value DSN (password=...) as "***".
func Print(w io.Writer, v any) error {
	for _, e := range Vars(v) {
		if _, err := fmt.Fprintf(w, "%s=%s\n", e.Name, format(e)); err != nil {
			return fmt.Errorf("print %s: %w", e.Name, err)
		}
	}
	return nil
}

func format(e Var) string {
	v := e.Value
	if e.Secret {
		switch {
		case v.Kind() == reflect.Slice:
			return fmt.Sprintf("<%d secrets>", v.Len())
		case v.IsZero():
			return ""
		default:
			return "<set>"
		}
	}
	if v.Kind() == reflect.Slice && v.Type().Elem().Kind() != reflect.Uint8 {
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = redact(scalar(v.Index(i)))
		}
		return strings.Join(parts, ",")
	}
	return redact(scalar(v))
}

// scalar formats one value as envconfig parses it back, as the default tags
// write them: durations without zero units ("1h", not "1h0m0s"), log levels
// in lower case, other text marshalers as their text, the rest with fmt.
func scalar(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case time.Duration:
		s := x.String()
		if strings.HasSuffix(s, "m0s") {
			s = strings.TrimSuffix(s, "0s")
		}
		if strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
		return s
	case slog.Level:
		return strings.ToLower(x.String())
	}
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		if b, err := m.MarshalText(); err == nil {
			return string(b)
		}
	}
	return fmt.Sprint(v.Interface())
}

var (
	dsnPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)
	// urlPassword is the password of a URL that does not parse, up to the
	// last '@': a '#', '/', '?' or space in a password is what most often
	// breaks a URL, and it must stay hidden then too.
	urlPassword = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*://[^:@/?#]*:).*@`)
	// secretParam matches the names of query parameters that carry a
	// secret: passwords, tokens, signatures, API keys.
	secretParam = regexp.MustCompile(`(?i)pass|pwd|secret|token|sig|auth|credential|api[-_]?key|^key$|[-_]key$`)
)

// redact hides secrets in s: a URL's userinfo password (also in a URL that
// does not parse) and the values of query parameters named as secrets
// (password, token, sig, api_key, ...), or the password (and sslpassword)
// of a key=value DSN such as "host=db user=u password=p". A setting that is
// a secret as a whole is marked secret:"true" instead.
func redact(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil && strings.Contains(s, "://"):
		s = urlPassword.ReplaceAllString(s, "${1}***@")
		if base, query, ok := strings.Cut(s, "?"); ok {
			s = base + "?" + redactQuery(query)
		}
		return s
	case err != nil || u.Scheme == "" || u.Opaque != "":
		return dsnPassword.ReplaceAllString(s, "${1}***")
	}
	changed := false
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "***")
		changed = true
	}
	if q := redactQuery(u.RawQuery); q != u.RawQuery {
		u.RawQuery = q
		changed = true
	}
	if !changed {
		return s
	}
	// The userinfo's "***" comes out escaped.
	return strings.ReplaceAll(u.String(), "%2A%2A%2A", "***")
}

// redactQuery hides the values of the parameters of a raw query whose
// names say they carry a secret, keeping the rest as written.
func redactQuery(query string) string {
	parts := strings.Split(query, "&")
	for i, p := range parts {
		name, _, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		if n, err := url.QueryUnescape(name); err == nil && secretParam.MatchString(n) || secretParam.MatchString(name) {
			parts[i] = name + "=***"
		}
	}
	return strings.Join(parts, "&")
}
