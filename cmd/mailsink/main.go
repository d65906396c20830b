// Command mailsink is a local SMTP server for development: it accepts every
// message and writes it as an .eml file, so diditflow can be run against a
// real SMTP_URL, and the mail server stopped and started again, without any
// installed mail server.
//
//	go run ./cmd/mailsink -addr 127.0.0.1:2525 -dir .data/sink
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/diditflow/diditflow/internal/harness/smtptest"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:2525", "listen address")
	dir := flag.String("dir", ".data/sink", "where received messages are written")
	flag.Parse()
	if err := os.MkdirAll(*dir, 0o750); err != nil {
		fmt.Fprintln(os.Stderr, "mailsink:", err)
		os.Exit(1)
	}
	srv, err := smtptest.Start(*addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mailsink:", err)
		os.Exit(1)
	}
	srv.OnMail(func(m smtptest.Mail) {
		sum := sha256.Sum256(m.Data)
		name := filepath.Join(*dir, hex.EncodeToString(sum[:8])+".eml")
		if err := os.WriteFile(name, m.Data, 0o640); err != nil {
			fmt.Fprintln(os.Stderr, "mailsink:", err)
			return
		}
		fmt.Printf("mailsink: %q to %v → %s\n", m.Subject, m.To, name)
	})
	fmt.Printf("mailsink: listening on smtp://%s, writing to %s (Ctrl-C stops)\n", srv.Addr, *dir)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	_ = srv.Close()
}
