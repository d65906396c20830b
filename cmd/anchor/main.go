// Command anchor is the yardstick make bench measures the starter's refusal
// path against: the least a webhook verifier can do with the standard
// library. It reads the body, checks X-Timestamp and one raw-body HMAC, and
// answers 401 or 200, with no router, no metrics and no logs. With -bare it
// reads the body and answers 401 without verifying: the HTTP ceiling.
//
// It is a benchmark's tool, not a verifier to deploy: it ignores
// X-Signature-V2 and X-Signature-Simple and every secret but one.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	secret := flag.String("secret", "", "the webhook secret")
	bare := flag.Bool("bare", false, "answer 401 without verifying")
	flag.Parse()
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "anchor:", err)
		os.Exit(1)
	}
	// The harness reads the address from the first line.
	fmt.Println(l.Addr().String())
	h := verify([]byte(*secret))
	if *bare {
		h = func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 1<<20))
			w.WriteHeader(http.StatusUnauthorized)
		}
	}
	srv := &http.Server{Handler: http.HandlerFunc(h), ReadHeaderTimeout: 5 * time.Second}
	if err := srv.Serve(l); err != nil {
		fmt.Fprintln(os.Stderr, "anchor:", err)
		os.Exit(1)
	}
}

func verify(secret []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		ts, err := strconv.ParseInt(r.Header.Get("X-Timestamp"), 10, 64)
		if err != nil || max(time.Now().Unix()-ts, ts-time.Now().Unix()) > 300 {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		want, err := hex.DecodeString(r.Header.Get("X-Signature"))
		m := hmac.New(sha256.New, secret)
		m.Write(body)
		if err != nil || !hmac.Equal(want, m.Sum(nil)) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}
}
