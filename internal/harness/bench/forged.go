package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/harness/launch"
)

// ForgedOptions size the forged flood.
type ForgedOptions struct {
	Repo string
	// Dir receives the binaries and the processes' logs.
	Dir string
	// TemporalAddress is given to the starter; refusals never reach it.
	TemporalAddress string
	Concurrency     int
	Step            time.Duration
	Log             io.Writer
}

// ForgedResult is the starter's refusal rate beside its anchors: the least
// a stdlib verifier does (one raw-body HMAC) and a bare server that
// verifies nothing.
type ForgedResult struct {
	Concurrency           int
	Bare, Anchor, Starter Level
	// StarterRSSKB is the starter's resident memory idle, before the
	// flood, and at its end.
	StarterRSSKB [2]int64
}

// Ratio is the starter's refusals per second over the anchor verifier's.
func (r ForgedResult) Ratio() float64 { return r.Starter.PerSecond / max(r.Anchor.PerSecond, 1) }

// RSSGrowth is the starter's resident memory at the end of the flood over
// its idle memory.
func (r ForgedResult) RSSGrowth() float64 {
	return float64(r.StarterRSSKB[1]) / float64(max(r.StarterRSSKB[0], 1))
}

// The second secret is configured as during a rotation, so the starter
// computes every scheme under both.
const rotatingSecret = "bench-secret-previous"

// Forged floods three processes, each its own, with the same client and
// the same forged deliveries: a small body (In Progress, 459 bytes), a
// fresh timestamp, wrong X-Signature and X-Signature-V2. The starter runs
// as configured by default (info logs, JSON, on a file) with two secrets.
// The anchor and the starter alternate A B B A so drift falls on both.
func Forged(ctx context.Context, secret string, opts ForgedOptions) (ForgedResult, error) {
	res := ForgedResult{Concurrency: opts.Concurrency}
	logf := func(format string, args ...any) { fmt.Fprintf(opts.Log, "bench: "+format+"\n", args...) }
	body, err := os.ReadFile(filepath.Join(opts.Repo, "didit", "testdata", "fixtures", "status-updated-in-progress.json"))
	if err != nil {
		return res, err
	}
	if err := launch.Build(ctx, opts.Dir, "./starter", "./cmd/anchor"); err != nil {
		return res, err
	}
	start := func(name string, args, env []string, port string) (*launch.Proc, string, error) {
		bin := "anchor"
		if name == "starter" {
			bin = "starter"
		}
		p, err := launch.Start(filepath.Join(opts.Dir, bin), args, env, filepath.Join(opts.Dir, name+".log"))
		if err != nil {
			return nil, "", err
		}
		url := "http://127.0.0.1:" + port
		// Any answer means it is serving.
		err = launch.WaitFor(ctx, time.Minute, name, func() bool {
			resp, err := http.Get(url + "/healthz")
			if err == nil {
				resp.Body.Close()
			}
			return err == nil
		})
		return p, url, err
	}
	var ports [3]string
	for i := range ports {
		if ports[i], err = launch.FreePort(); err != nil {
			return res, err
		}
	}
	bare, bareURL, err := start("bare", []string{"-bare", "-addr", "127.0.0.1:" + ports[0]}, nil, ports[0])
	if err != nil {
		return res, err
	}
	defer bare.Stop(syscall.SIGTERM)
	anchor, anchorURL, err := start("anchor", []string{"-secret", secret, "-addr", "127.0.0.1:" + ports[1]}, nil, ports[1])
	if err != nil {
		return res, err
	}
	defer anchor.Stop(syscall.SIGTERM)
	starter, starterURL, err := start("starter", nil, []string{
		"TEMPORAL_ADDRESS=" + opts.TemporalAddress, "HTTP_ADDR=127.0.0.1:" + ports[2],
		"DIDIT_WEBHOOK_SECRETS=" + secret + "," + rotatingSecret,
		"PAYLOAD_ENCRYPTION_KEYS=" + launch.PayloadKeys, "STARTER_METRICS_ADDR=",
	}, ports[2])
	if err != nil {
		return res, err
	}
	defer starter.Stop(syscall.SIGTERM)
	starterURL += "/webhooks/didit"

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512}, Timeout: 10 * time.Second}
	headers := didit.Headers{Signature: forgedSignature, SignatureV2: forgedSignature}
	flood := func(url string) func(int64) error {
		return func(int64) error {
			req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				return err
			}
			h := headers
			h.Timestamp = strconv.FormatInt(time.Now().Unix(), 10)
			h.Set(req.Header)
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				return fmt.Errorf("forged delivery answered %d", resp.StatusCode)
			}
			return nil
		}
	}
	c, half := opts.Concurrency, opts.Step/2
	// Each process gets its connections and warms up before it is measured.
	for _, url := range []string{bareURL, anchorURL, starterURL} {
		load(c, 500*time.Millisecond, flood(url))
	}
	time.Sleep(time.Second)
	res.StarterRSSKB[0] = starter.RSSKB()
	logf("forged flood, concurrency %d: bare server", c)
	res.Bare = level(c, load(c, opts.Step, flood(bareURL)))
	logf("forged flood, concurrency %d: anchor verifier and starter, alternating", c)
	a1 := load(c, half, flood(anchorURL))
	b1 := load(c, half, flood(starterURL))
	b2 := load(c, half, flood(starterURL))
	res.StarterRSSKB[1] = starter.RSSKB()
	a2 := load(c, half, flood(anchorURL))
	res.Anchor, res.Starter = level(c, a1, a2), level(c, b1, b2)
	return res, nil
}

// Print writes the forged flood's lines.
func (r ForgedResult) Print(w io.Writer) {
	fmt.Fprintf(w, "forged flood, %d connections, 459-byte body, wrong X-Signature and X-Signature-V2, two secrets\n", r.Concurrency)
	for _, l := range []struct {
		name string
		Level
	}{{"bare server (no verification)", r.Bare}, {"anchor verifier (stdlib, one HMAC)", r.Anchor}, {"starter", r.Starter}} {
		fmt.Fprintf(w, "  %-36s %7.0f/s  p50 %s  p99 %s  errors %d\n", l.name, l.PerSecond, ms(l.P50), ms(l.P99), l.Errors)
	}
	fmt.Fprintf(w, "  starter / anchor verifier            %.2f×  (target ≥ 0.70)\n", r.Ratio())
	fmt.Fprintf(w, "  starter RSS idle / end of flood      %.1f MiB / %.1f MiB = %.2f×  (target ≤ 1.5)\n",
		float64(r.StarterRSSKB[0])/1024, float64(r.StarterRSSKB[1])/1024, r.RSSGrowth())
}
