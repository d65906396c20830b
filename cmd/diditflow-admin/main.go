// Command diditflow-admin runs operator procedures against Didit and
// diditflow. rotate-secret rotates Didit's webhook secret without losing a
// delivery; see usage below and README's "Rotating the webhook secret".
// erase removes a user's personal data (diditflow-admin erase -h).
//
//	diditflow-admin rotate-secret                      # legacy webhook: rotate now
//	diditflow-admin rotate-secret --after-deploy       # then trigger a reconcile run
//	diditflow-admin rotate-secret --finish             # then drop the old secret
//	diditflow-admin rotate-secret --destination <uuid> # webhook destination: gap-free
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	a := &app{stdout: os.Stdout, stderr: os.Stderr, openSchedule: dialReconcileSchedule}
	code := a.run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
