// Command codec-server serves diditflow's payload codec to the Temporal UI
// and CLI, so people with access see the histories it encrypted
// (package internal/codecserver). It reads PAYLOAD_ENCRYPTION_KEYS as the
// starter and worker do, and CODEC_* for who may call it:
//
//	CODEC_AUTH_TOKEN=ci:$(openssl rand -hex 32) CODEC_ENCODE_AUTH_TOKEN=ops:$(openssl rand -hex 32) go run ./cmd/codec-server
//	temporal workflow show -w didit-session-<id> --codec-endpoint http://127.0.0.1:8081 --codec-auth "Bearer <ci token>"
//
// The first token decodes, the second encodes (a signal's input); with
// CODEC_OIDC_ISSUER, CODEC_DECODE_REQUIRE_CLAIM and CODEC_ENCODE_REQUIRE_CLAIM
// say which of the issuer's users may do which.
//
// On a loopback address with no auth configured it serves anyone on this
// machine, as make run does for the dev server's UI.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/diditflow/diditflow/internal/codec"
	"github.com/diditflow/diditflow/internal/codecserver"
	"github.com/diditflow/diditflow/internal/config"
)

func main() {
	if err := run(); err != nil {
		slog.Error("codec-server failed", "error", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := config.LoadCodecServer()
	if err != nil {
		return err
	}
	log := cfg.Log.NewLogger()
	if cfg.Encryption.PayloadEncryptionKeys == "" {
		return errors.New("PAYLOAD_ENCRYPTION_KEYS is not set: give the keys the starter and worker use")
	}
	c, err := codec.ParseKeys(cfg.Encryption.PayloadEncryptionKeys)
	if err != nil {
		return fmt.Errorf("PAYLOAD_ENCRYPTION_KEYS: %w", err)
	}
	h, err := codecserver.New(cfg, c, log)
	if err != nil {
		return err
	}
	srv := codecserver.NewHTTPServer(cfg, h, log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("codec server listening", "addr", cfg.Addr, "key_ids", c.KeyIDs())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("codec server stopped")
	return nil
}
