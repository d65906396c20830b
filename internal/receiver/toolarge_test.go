package receiver

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/diditflow/diditflow/internal/harness/launch"
)

// slowPost sends a POST of size bytes over a raw connection the way a plain
// client such as Python's urllib does: the whole body first, in pieces with
// pauses, and only then the answer is read. chunked sends it without a
// Content-Length.
func slowPost(t *testing.T, base string, size int, chunked bool) (*http.Response, error) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	head := "POST /webhooks/didit HTTP/1.1\r\nHost: " + u.Host + "\r\nContent-Type: application/json\r\n"
	if chunked {
		head += "Transfer-Encoding: chunked\r\n\r\n"
	} else {
		head += fmt.Sprintf("Content-Length: %d\r\n\r\n", size)
	}
	if _, err := conn.Write([]byte(head)); err != nil {
		return nil, fmt.Errorf("write head: %w", err)
	}
	piece := bytes.Repeat([]byte("x"), 64<<10)
	for sent := 0; sent < size; sent += len(piece) {
		p := piece[:min(len(piece), size-sent)]
		if chunked {
			if _, err := fmt.Fprintf(conn, "%x\r\n%s\r\n", len(p), p); err != nil {
				return nil, fmt.Errorf("write after %d bytes: %w", sent, err)
			}
		} else if _, err := conn.Write(p); err != nil {
			return nil, fmt.Errorf("write after %d bytes: %w", sent, err)
		}
		// Slower than net/http's half a second of lingering on close.
		time.Sleep(60 * time.Millisecond)
	}
	if chunked {
		if _, err := conn.Write([]byte("0\r\n\r\n")); err != nil {
			return nil, fmt.Errorf("write last chunk: %w", err)
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	return http.ReadResponse(bufio.NewReader(conn), nil)
}

// TestOversizedBodyAnswerIsReadable: a client still sending a body over
// MAX_BODY_BYTES reads the 413, instead of a connection reset.
func TestOversizedBodyAnswerIsReadable(t *testing.T) {
	h := newHarness(t, launch.UnreachableTemporal(t), nil)
	size := DefaultMaxBodyBytes + DefaultMaxBodyBytes/20 // 1.05 MB, as a real client sent it
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			resp, err := slowPost(t, h.url, size, chunked)
			if err != nil {
				t.Fatalf("the client never read an answer: %v", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("status = %d, want 413", resp.StatusCode)
			}
			if !resp.Close && !strings.EqualFold(resp.Header.Get("Connection"), "close") {
				t.Error("a 413 must close the connection: the rest of the body is not read")
			}
			if h.temporal.signals.Load() != 0 {
				t.Error("an oversized delivery reached Temporal")
			}
		})
	}
}
