package e2e

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/diditflow/diditflow/internal/harness/launch"
	"github.com/diditflow/diditflow/internal/harness/simulator"
)

// processesWith lists the processes whose environment holds entry.
func processesWith(entry string) []string {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []string
	for _, d := range dirs {
		env, err := os.ReadFile(filepath.Join(d, "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if string(kv) == entry {
				cmdline, _ := os.ReadFile(filepath.Join(d, "cmdline"))
				pids = append(pids, filepath.Base(d)+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
				break
			}
		}
	}
	return pids
}

// TestMakeRun runs `make run` as a newcomer would: it starts, a scenario is
// processed into a record and a mail, Ctrl-C stops it, nothing is left behind.
func TestMakeRun(t *testing.T) {
	const hooks = "HOOK_WORKFLOWS=OnKYCEvent@onboarding"
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	data := t.TempDir()
	temporalPort, uiPort, httpPort, fakePort, codecPort := launch.Port(t), launch.Port(t), launch.Port(t), launch.Port(t), launch.Port(t)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TEMPORAL_") && !strings.HasPrefix(kv, "DATABASE_URL=") &&
			!strings.HasPrefix(kv, "SMTP_URL=") && !strings.HasPrefix(kv, "OUTBOX_DIR=") && !strings.HasPrefix(kv, "DIDIT_API_") &&
			!strings.HasPrefix(kv, "PAYLOAD_ENCRYPTION") && !strings.HasPrefix(kv, "CODEC_") {
			env = append(env, kv)
		}
	}
	marker := "DIDITFLOW_DATA=" + data
	env = append(env, marker,
		"TEMPORAL_ADDRESS=127.0.0.1:"+temporalPort, "TEMPORAL_UI_PORT="+uiPort,
		"HTTP_ADDR=127.0.0.1:"+httpPort, "DIDIT_WEBHOOK_SECRETS="+secret, "DIDIT_FAKE_ADDR=127.0.0.1:"+fakePort, "CODEC_ADDR=127.0.0.1:"+codecPort,
		"TEMPORAL_CLI="+os.Getenv("TEMPORAL_CLI"), hooks)

	logPath := filepath.Join(t.TempDir(), "make-run.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("make", "--no-print-directory", "run")
	cmd.Dir = launch.Path(t)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, as a terminal gives a foreground job.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		for _, p := range processesWith(marker) {
			if f := strings.Fields(p); len(f) > 0 {
				if pid, err := strconv.Atoi(f[0]); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("make run output:\n%s", out)
		}
	}()

	base := "http://127.0.0.1:" + httpPort
	waitUntil(t, "the starter to be ready", 4*time.Minute, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	// HOOK_WORKFLOWS reaches the worker as the developer set it, as
	// examples/onboarding's README has it run.
	if !slices.ContainsFunc(processesWith(hooks), func(p string) bool { return strings.Contains(p, "/bin/worker") }) {
		t.Errorf("no worker runs with %s", hooks)
	}

	// The developer exported a webhook secret, maybe a real one: no process
	// make run started carries it on its command line, which every user of
	// the machine reads in ps.
	for _, p := range processesWith(marker) {
		if strings.Contains(p, secret) {
			t.Errorf("a process carries the exported DIDIT_WEBHOOK_SECRETS on its command line: %s", p)
		}
	}

	ds, err := simulator.Build("approved", simulator.Options{Email: userEmail})
	if err != nil {
		t.Fatal(err)
	}
	sender := &simulator.Sender{URL: base + "/webhooks/didit", Secret: secret, RetryDelays: []time.Duration{}, Log: io.Discard}
	res, err := sender.Run(context.Background(), simulator.Plan{}, func() ([]simulator.Delivery, error) { return ds, nil })
	if err != nil || res.ByStatus[200] != len(ds) {
		t.Fatalf("deliveries: %+v, %v", res.ByStatus, err)
	}
	waitUntil(t, "the approval mail in the outbox", time.Minute, func() bool {
		files, _ := filepath.Glob(filepath.Join(data, "outbox", "*.eml"))
		return len(files) == 1
	})
	if _, err := os.Stat(filepath.Join(data, "diditflow.db")); err != nil {
		t.Fatalf("no records database under the data directory: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(data, "payload-keys")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("development payload key: %v (mode %v), want a file only its owner reads", err, fi)
	}
	// The history is encrypted; the codec server make run starts (the one
	// the UI is pointed at) decodes it for the CLI too.
	show := func(extra ...string) string {
		cli, err := launch.TemporalCLI()
		if err != nil {
			t.Fatal(err)
		}
		args := append([]string{"workflow", "show", "--address", "127.0.0.1:" + temporalPort,
			"--workflow-id", "didit-session-" + ds[0].SessionID, "--output", "json"}, extra...)
		out, err := exec.Command(cli, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("temporal %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return readable(t, out)
	}
	if h := show(); strings.Contains(h, userEmail) {
		t.Error("the history read without the codec shows the user's address")
	}
	if h := show("--codec-endpoint", "http://127.0.0.1:"+codecPort); !strings.Contains(h, userEmail) {
		t.Errorf("the history read through make run's codec server does not show the user's address:\n%.3000s", h)
	}

	// Ctrl-C.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("make run did not stop within a minute of Ctrl-C")
	}
	out, _ := os.ReadFile(logPath)
	for _, want := range []string{"[run] diditflow is up", "hooks             OnKYCEvent@onboarding", "[starter]", "[worker]", "[temporal]", "[didit-fake]", "[codec-server]", "created a development payload key", "Didit API on", "[run] stopped"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(string(out), secret) {
		t.Error("make run printed the DIDIT_WEBHOOK_SECRETS the developer exported")
	}
	if left := processesWith(marker); len(left) > 0 {
		t.Fatalf("processes left behind: %v", left)
	}
	for _, port := range []string{temporalPort, uiPort, httpPort} {
		if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			c.Close()
			t.Errorf("port %s still listening", port)
		}
	}
}

func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
