package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/diditflow/diditflow/internal/admin/cases"
	"github.com/diditflow/diditflow/internal/config"
)

// compliance runs the cases, case and resolve command line args and returns
// the exit code.
func (a *app) compliance(ctx context.Context, cmd string, args []string) int {
	fs, c := cases.FlagSet(cmd)
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") && cmd != "cases" {
		c.Request.CaseID, args = args[0], args[1:]
	}
	if ok, code := a.parse(fs, args, func(w io.Writer) { printUsage(w, cases.Usage, fs) }, cmd); !ok {
		return code
	}
	if err := c.Check(); err != nil {
		return a.usageError(cmd, err.Error())
	}
	cfg, err := config.LoadWorker()
	if err != nil {
		fmt.Fprintf(a.stderr, "diditflow-admin %s: %v\n", cmd, err)
		return exitFailure
	}
	out, err := c.Run(ctx, logger(cfg.Log, a.stderr), cfg, a.openUpdater)
	if err == nil && c.JSON {
		err = out.WriteJSON(a.stdout)
	} else if err == nil {
		err = out.WriteText(a.stdout)
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "diditflow-admin %s: %v\n", cmd, err)
		return exitFailure
	}
	return exitOK
}
