// Command diditflow-records prints the business's verification records from
// the worker's database (DATABASE_URL, default .data/diditflow.db): the most
// recent sessions, or one session's record, events, notices and AML case
// (internal/admin/records).
//
//	go run ./cmd/diditflow-records
//	go run ./cmd/diditflow-records -session <session_id>
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/diditflow/diditflow/internal/admin/records"
	"github.com/diditflow/diditflow/internal/store"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "diditflow-records:", err)
		os.Exit(1)
	}
}

func run() error {
	dsn := os.Getenv("DATABASE_URL")
	if dsn == "" {
		dsn = ".data/diditflow.db"
	}
	session := flag.String("session", "", "show this session in detail")
	limit := flag.Int("n", 20, "how many recent sessions to list")
	flag.Parse()

	ctx := context.Background()
	st, err := store.Open(ctx, dsn, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	if *session == "" {
		return records.WriteRecent(ctx, os.Stdout, st, *limit)
	}
	return records.WriteSession(ctx, os.Stdout, st, *session)
}
