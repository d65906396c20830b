// Package pgtest hands tests a PostgreSQL database of their own: a fresh
// schema in the server at TEST_DATABASE_URL (default: the local one, trust
// auth), dropped when the test ends.
package pgtest

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	// Registers the "pgx" database/sql driver.
	_ "github.com/jackc/pgx/v5/stdlib"
)

// DefaultURL is the PostgreSQL the tests use unless TEST_DATABASE_URL names
// another.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// DSN creates a uniquely named schema in the test database and returns a
// DSN whose search_path points at it, so concurrent runs and tests never
// see each other's tables; its application_name is the schema's name too,
// so that pg_stat_activity tells the test's connections apart. Without a
// reachable server the test is skipped, except under CI=true, where that is
// a failure.
func DSN(t *testing.T) string {
	t.Helper()
	base := cmp.Or(os.Getenv("TEST_DATABASE_URL"), DefaultURL)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("parse TEST_DATABASE_URL: %v", err)
	}
	t.Cleanup(func() { _ = admin.Close() })

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL unreachable and CI=true, so failing instead of skipping: %v", err)
		}
		t.Skipf("PostgreSQL unreachable (set TEST_DATABASE_URL; CI=true turns this skip into a failure): %v", err)
	}

	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	schema := "diditflow_test_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})

	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	q.Set("application_name", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
