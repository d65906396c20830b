package pii

import "testing"

// The expected digest is sha256sum of "alice@example.com".
func TestHashAddressIgnoresCaseAndSpace(t *testing.T) {
	const want = "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976"
	for _, in := range []string{"alice@example.com", " Alice@Example.COM\t"} {
		if got := HashAddress(in); got != want {
			t.Errorf("HashAddress(%q) = %s, want %s", in, got, want)
		}
	}
	if HashAddress("bob@example.com") == want {
		t.Error("two addresses share a hash")
	}
}

func TestRedactAddresses(t *testing.T) {
	for in, want := range map[string]string{
		"550 5.1.1 <jane.doe@example.com>: user unknown": "550 5.1.1 <[redacted]>: user unknown",
		"rcpt to:jane@example.com, bob@example.org":      "rcpt to:[redacted], [redacted]",
		`mail from "x@y.z" refused`:                      `mail from "[redacted]" refused`,
		"no address here":                                "no address here",
	} {
		if got := RedactAddresses(in); got != want {
			t.Errorf("RedactAddresses(%q) = %q, want %q", in, got, want)
		}
	}
}
