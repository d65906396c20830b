// Package pii keeps e-mail addresses, the personal data diditflow handles
// most, out of records, logs and workflow histories.
package pii

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// HashAddress identifies an e-mail address without revealing it, so records
// and logs can say who was notified without storing the address: the hex
// SHA-256 of the trimmed, lower-cased address.
func HashAddress(address string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(address))))
	return hex.EncodeToString(sum[:])
}

// addressLike matches what mail servers tend to quote back in their replies.
var addressLike = regexp.MustCompile(`[^\s<>()\[\]"',;:@]+@[^\s<>()\[\]"',;:@]+`)

// RedactAddresses replaces everything shaped like an e-mail address in s.
func RedactAddresses(s string) string {
	return addressLike.ReplaceAllString(s, "[redacted]")
}
