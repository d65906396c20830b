package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/simulator"
)

// ClusterOptions size a scale run against make cluster.
type ClusterOptions struct {
	// Starters are the starters' webhook URLs; sessions go round robin.
	Starters []string
	Secret   string
	// Rates are the offered loads, sessions per second, each for Step.
	Rates []float64
	Step  time.Duration
	Log   io.Writer
}

// ClusterLevel is one offered load's figures.
type ClusterLevel struct {
	Offered, Achieved float64 // sessions per second
	Sessions          int
	P50, P99          time.Duration // first delivery to workflow completion, less the idle window
	// CPU is the CPU seconds each kind of process used per second of the
	// level (1.0 = one core), by process kind.
	CPU map[string]float64
}

// Cluster offers rising loads of approved sessions (In Progress, then
// Approved) to the cluster's starters and times each session from its first
// delivery to its workflow's completion, with the CPU every process kind
// used meanwhile.
func Cluster(ctx context.Context, c client.Client, idle time.Duration, opts ClusterOptions) ([]ClusterLevel, error) {
	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 10 * time.Second}
	var out []ClusterLevel
	for _, rate := range opts.Rates {
		fmt.Fprintf(opts.Log, "bench: cluster, %.0f sessions/s offered for %s\n", rate, opts.Step)
		n := int(rate * opts.Step.Seconds())
		before := cpuByKind()
		start := time.Now()
		var mu sync.Mutex
		begun := map[string]time.Time{}
		var wg sync.WaitGroup
		per := len(opts.Starters)
		for i, url := range opts.Starters {
			sender := &simulator.Sender{URL: url, Secret: opts.Secret, Client: httpClient,
				RetryDelays: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}}
			share := n / per
			if i < n%per {
				share++
			}
			wg.Go(func() {
				_, _ = sender.Run(ctx, simulator.Plan{Sessions: share, Rate: rate / float64(per)}, func() ([]simulator.Delivery, error) {
					ds, err := simulator.Build("approved", simulator.Options{Email: "user@example.com"})
					if err == nil {
						mu.Lock()
						begun[ds[0].SessionID] = time.Now()
						mu.Unlock()
					}
					return ds, err
				})
			})
		}
		wg.Wait()
		var ids []string
		for id := range begun {
			ids = append(ids, contract.SessionWorkflowID(id))
		}
		if err := waitCompleted(ctx, c, ids, 10*time.Minute); err != nil {
			return out, err
		}
		after := cpuByKind()
		var lat []time.Duration
		var last time.Time
		for id, t0 := range begun {
			d, err := c.DescribeWorkflow(ctx, contract.SessionWorkflowID(id), "")
			if err != nil {
				return out, err
			}
			if d.WorkflowCloseTime == nil {
				return out, fmt.Errorf("%s completed without a close time", id)
			}
			closed := *d.WorkflowCloseTime
			lat = append(lat, closed.Sub(t0)-idle)
			if closed.After(last) {
				last = closed
			}
		}
		slices.Sort(lat)
		elapsed := last.Sub(start)
		lv := ClusterLevel{Offered: rate, Sessions: len(lat), Achieved: float64(len(lat)) / (elapsed - idle).Seconds(),
			P50: lat[len(lat)/2], P99: lat[min(len(lat)*99/100, len(lat)-1)], CPU: map[string]float64{}}
		for k, v := range after {
			lv.CPU[k] = (v - before[k]) / elapsed.Seconds()
		}
		out = append(out, lv)
	}
	return out, nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times.
const clockTicks = 100

// cpuByKind sums the CPU seconds used so far by each kind of process the
// cluster runs: Temporal's four services, diditflow's workers and
// starters, PostgreSQL.
func cpuByKind() map[string]float64 {
	out := map[string]float64{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil {
			continue
		}
		kind := processKind(strings.ReplaceAll(string(cmdline), "\x00", " "))
		if kind == "" {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue
		}
		// The fields after the command name, which may hold spaces.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) < 13 {
			continue
		}
		utime, _ := strconv.ParseFloat(fields[11], 64)
		stime, _ := strconv.ParseFloat(fields[12], 64)
		out[kind] += (utime + stime) / clockTicks
	}
	return out
}

func processKind(cmdline string) string {
	switch {
	case strings.Contains(cmdline, "cluster-v") && strings.Contains(cmdline, "--service"):
		return "temporal " + cmdline[strings.LastIndex(cmdline, "--service")+len("--service "):]
	case strings.Contains(cmdline, "cluster/bin/worker"):
		return "diditflow workers"
	case strings.Contains(cmdline, "cluster/bin/starter"):
		return "diditflow starters"
	case strings.HasPrefix(cmdline, "postgres"), strings.Contains(cmdline, "/postgres "):
		return "postgresql"
	}
	return ""
}

// PrintCluster writes a scale run's table.
func PrintCluster(w io.Writer, label string, levels []ClusterLevel) {
	fmt.Fprintf(w, "%s\n", label)
	fmt.Fprintf(w, "  %-8s %-9s %-8s %-9s %-9s %s\n", "offered", "achieved", "sessions", "p50", "p99", "CPU (cores) by process")
	for _, l := range levels {
		var kinds []string
		for k := range l.CPU {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		var cpu []string
		for _, k := range kinds {
			cpu = append(cpu, fmt.Sprintf("%s %.2f", k, l.CPU[k]))
		}
		fmt.Fprintf(w, "  %-8.0f %-9.1f %-8d %-9s %-9s %s\n", l.Offered, l.Achieved, l.Sessions, ms(l.P50), ms(l.P99), strings.Join(cpu, ", "))
	}
}
