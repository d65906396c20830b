package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/diditflow/diditflow/internal/harness/launch"
	"github.com/diditflow/diditflow/internal/harness/simulator"
)

// Plan sizes a chaos run.
type Plan struct {
	// Sessions per fault scenario (1–5).
	Sessions int
	// Kills is how many times the worker is SIGKILLed in scenario 2.
	Kills int
	// DBOutage is how long the database stays unavailable in scenario 3.
	DBOutage time.Duration
	// Soak runs sessions at SoakRate per second for this long with faults
	// injected at random; zero skips it.
	Soak     time.Duration
	SoakRate float64
	// Settle bounds the wait for every session to finish at the end.
	Settle time.Duration
}

// ShortPlan fits in make test; FullPlan is make chaos.
var (
	ShortPlan = Plan{Sessions: 3, Kills: 2, DBOutage: 4 * time.Second, Soak: 15 * time.Second, SoakRate: 2, Settle: 2 * time.Minute}
	FullPlan  = Plan{Sessions: 10, Kills: 5, DBOutage: 20 * time.Second, Soak: 5 * time.Minute, SoakRate: 5, Settle: 10 * time.Minute}
)

// Result is the outcome of a run.
type Result struct {
	Report
	BadInputs []BadInputResult
}

// OK reports whether the run found nothing lost, duplicated or mishandled.
func (r Result) OK() bool {
	for _, b := range r.BadInputs {
		if b.Got != b.Want {
			return false
		}
	}
	return r.Report.OK()
}

// Run executes scenarios 1–8 against s.
func Run(ctx context.Context, s *Stack, plan Plan) Result {
	l := &Ledger{}
	// Didit's retries, compressed: the faults here are short.
	sender := func(secret string) *simulator.Sender {
		return &simulator.Sender{URL: s.WebhookURL(), Secret: secret, RetryDelays: []time.Duration{3 * time.Second, 10 * time.Second}}
	}
	noRetry := &simulator.Sender{URL: s.WebhookURL(), Secret: s.cfg.Secret, RetryDelays: []time.Duration{}}
	var res Result

	step := func(name string, f func() error) {
		s.logf("%s", name)
		if err := f(); err != nil {
			l.problem("%s: %v", name, err)
		}
	}

	step("1 Temporal down: deliveries get 503, Didit's re-sends are accepted after recovery", func() error {
		s.StopTemporal()
		var sessions []*session
		for i := 0; i < plan.Sessions; i++ {
			ss, err := l.NewSession(Scenarios()[i%len(Scenarios())])
			if err != nil {
				return err
			}
			sessions = append(sessions, ss)
			for _, d := range ss.deliveries {
				if code := l.Deliver(ctx, noRetry, ss, d); code != http.StatusServiceUnavailable {
					l.problem("delivery while Temporal is down answered %d, want 503", code)
				}
			}
		}
		if code := get(s.BaseURL() + "/readyz"); code != http.StatusServiceUnavailable {
			l.problem("/readyz while Temporal is down answered %d, want 503", code)
		}
		if err := s.StartTemporal(ctx); err != nil {
			return err
		}
		for _, ss := range sessions {
			for _, d := range ss.deliveries {
				l.Deliver(ctx, sender(s.cfg.Secret), ss, d)
			}
		}
		return nil
	})

	step("2 worker SIGKILLed in the middle of activities, restarted", func() error {
		done := sendSessions(ctx, l, sender(s.cfg.Secret), plan.Sessions, simulator.Plan{})
		for range plan.Kills {
			time.Sleep(time.Duration(300+rand.IntN(900)) * time.Millisecond)
			s.KillWorker()
			time.Sleep(300 * time.Millisecond)
			if err := s.StartWorker(ctx); err != nil {
				return err
			}
		}
		<-done
		return nil
	})

	step("3 database unavailable: activities retry and finish after recovery", func() error {
		blocked := make(chan error, 1)
		go func() { blocked <- s.BlockDatabase(ctx, plan.DBOutage) }()
		time.Sleep(200 * time.Millisecond)
		<-sendSessions(ctx, l, sender(s.cfg.Secret), plan.Sessions, simulator.Plan{})
		return <-blocked
	})

	step("4 SMTP down past the retry budget: the step parks, a retry signal delivers once", func() error {
		s.StopSMTP()
		ss, err := l.NewSession("approved")
		if err != nil {
			return err
		}
		for _, d := range ss.deliveries {
			l.Deliver(ctx, sender(s.cfg.Secret), ss, d)
		}
		// The notice parks once the budget is spent; Verify releases it with a
		// retry signal, as an operator would, once the server is back.
		err = launch.WaitFor(ctx, 2*s.cfg.StepBudget+time.Minute, "the notice to park", func() bool { return s.needsAttention(ctx, ss.id) })
		if startErr := s.StartSMTP(); startErr != nil {
			return startErr
		}
		return err
	})

	step("5 duplicates and disorder: every delivery x10, newest first, and concurrent deliveries", func() error {
		<-sendSessions(ctx, l, sender(s.cfg.Secret), plan.Sessions, simulator.Plan{Duplicate: 10, Reorder: true})
		ss, err := l.NewSession("declined-aml")
		if err != nil {
			return err
		}
		var wg sync.WaitGroup
		for range 3 {
			for _, d := range ss.deliveries {
				wg.Add(1)
				go func() { defer wg.Done(); l.Deliver(ctx, sender(s.cfg.Secret), ss, d) }()
			}
		}
		wg.Wait()
		return nil
	})

	step("6 bad input corpus: each refused as it should be, nothing changes, the receiver stays healthy", func() error {
		res.BadInputs = SendBadInputs(ctx, s.BaseURL(), BadInputs(s.cfg.Secret, time.Now()))
		for _, b := range res.BadInputs {
			if b.Got != b.Want {
				l.problem("bad input %q answered %d, want %d (%v)", b.Name, b.Got, b.Want, b.Err)
			}
		}
		if code := get(s.BaseURL() + "/healthz"); code != http.StatusOK {
			l.problem("/healthz after the corpus answered %d", code)
		}
		// Every corpus session id starts with badInputSession; none may reach
		// a record or a workflow.
		time.Sleep(2 * time.Second)
		records, err := s.Store.RecentSessions(ctx, 1_000_000)
		if err != nil {
			return err
		}
		for _, r := range records {
			if strings.HasPrefix(r.SessionID, badInputSession) {
				l.problem("the bad input corpus created record %s", r.SessionID)
			}
		}
		n, err := s.Client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Query: "WorkflowId STARTS_WITH 'didit-session-" + badInputSession + "'"})
		if err != nil {
			return err
		}
		if n.GetCount() != 0 {
			l.problem("the bad input corpus started %d workflows", n.GetCount())
		}
		return nil
	})

	step("7 secret rotation: old and new accepted while both are set, old refused after", func() error {
		old, next := s.cfg.Secret, s.cfg.Secret+"-next"
		if err := s.RestartStarter(ctx, old+","+next); err != nil {
			return err
		}
		for _, secret := range []string{old, next} {
			ss, err := l.NewSession("approved")
			if err != nil {
				return err
			}
			for _, d := range ss.deliveries {
				if code := l.Deliver(ctx, sender(secret), ss, d); code != http.StatusOK {
					l.problem("during rotation a delivery signed with the %s secret answered %d", secretName(secret, old), code)
				}
			}
		}
		if err := s.RestartStarter(ctx, next); err != nil {
			return err
		}
		ds, err := simulator.Build("approved", simulator.Options{})
		if err != nil {
			return err
		}
		if code := l.Deliver(ctx, &simulator.Sender{URL: s.WebhookURL(), Secret: old, RetryDelays: []time.Duration{}}, nil, ds[0]); code != http.StatusUnauthorized {
			l.problem("after rotation the old secret answered %d, want 401", code)
		}
		s.cfg.Secret = next
		return nil
	})

	if plan.Soak > 0 {
		step(fmt.Sprintf("8 soak: %.0f sessions/s for %s with faults 1-4 at random", plan.SoakRate, plan.Soak), func() error {
			soakCtx, cancel := context.WithTimeout(ctx, plan.Soak)
			defer cancel()
			faults := make(chan error, 1)
			go func() { faults <- s.injectFaults(soakCtx, plan) }()
			sessions := int(plan.Soak.Seconds() * plan.SoakRate)
			<-sendSessions(ctx, l, sender(s.cfg.Secret), sessions, simulator.Plan{Rate: plan.SoakRate})
			cancel()
			return <-faults
		})
	}

	s.logf("waiting for every session to settle")
	res.Report = l.Verify(ctx, s, plan.Settle)
	return res
}

// sendSessions runs n sessions of rotating scenarios in the background.
func sendSessions(ctx context.Context, l *Ledger, sender *simulator.Sender, n int, p simulator.Plan) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		var interval time.Duration
		if p.Rate > 0 {
			interval = time.Duration(float64(time.Second) / p.Rate)
		}
		for i := 0; i < n; i++ {
			if i > 0 && interval > 0 {
				time.Sleep(interval)
			}
			ss, err := l.NewSession(Scenarios()[rand.IntN(len(Scenarios()))])
			if err != nil {
				l.problem("build session: %v", err)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, d := range p.Order(ss.deliveries) {
					l.Deliver(ctx, sender, ss, d)
				}
			}()
		}
		wg.Wait()
	}()
	return done
}

// injectFaults cycles through faults 1–4 at random until ctx ends; each is
// short enough for Didit's (compressed) retries and the step budget.
func (s *Stack) injectFaults(ctx context.Context, plan Plan) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Duration(2+rand.IntN(4)) * time.Second):
		}
		switch rand.IntN(4) {
		case 0:
			s.logf("soak fault: Temporal down for 3s")
			s.StopTemporal()
			time.Sleep(3 * time.Second)
			if err := s.StartTemporal(context.Background()); err != nil {
				return err
			}
		case 1:
			s.logf("soak fault: worker SIGKILLed")
			s.KillWorker()
			time.Sleep(500 * time.Millisecond)
			if err := s.StartWorker(context.Background()); err != nil {
				return err
			}
		case 2:
			s.logf("soak fault: database unavailable for 3s")
			if err := s.BlockDatabase(context.Background(), 3*time.Second); err != nil {
				return err
			}
		case 3:
			s.logf("soak fault: SMTP down for 3s")
			s.StopSMTP()
			time.Sleep(3 * time.Second)
			if err := s.StartSMTP(); err != nil {
				return err
			}
		}
	}
}

func (s *Stack) needsAttention(ctx context.Context, session string) bool {
	v, err := s.Client.QueryWorkflow(ctx, "didit-session-"+session, "", "state")
	if err != nil {
		return false
	}
	var st struct {
		Parked []struct{} `json:"parked"`
	}
	return v.Get(&st) == nil && len(st.Parked) > 0
}

func get(url string) int {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func secretName(secret, old string) string {
	if secret == old {
		return "old"
	}
	return "new"
}

// Print writes the figures table.
func (r Result) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(name string, v any, note string) { fmt.Fprintf(tw, "%s\t%v\t%s\n", name, v, note) }
	row("deliveries sent", r.Sent, "HTTP attempts, Didit's retries included")
	row("acknowledged (2xx)", r.Acknowledged, "")
	row("answered 5xx", r.Answered5xx, "Temporal down: Didit retries these")
	row("refused (4xx)", r.Refused4xx, "old secret after rotation")
	row("sessions expected / completed", fmt.Sprintf("%d / %d", r.SessionsExpected, r.SessionsCompleted), "")
	row("records wrong", r.RecordsWrong, "must be 0")
	row("mails sent / expected", fmt.Sprintf("%d / %d", r.MailsSent, r.MailsExpected), "")
	row("AML cases / expected", fmt.Sprintf("%d / %d", r.AMLCases, r.AMLCasesExpected), "")
	row("lost events", r.LostEvents, "must be 0")
	row("duplicate effects", r.DuplicateEffects, "must be 0")
	row("parked steps", r.ParkedSteps, "released with a retry signal")
	row("notices in doubt", r.InDoubt, "worker killed between handover and record: not resent, flagged")
	bad := 0
	for _, b := range r.BadInputs {
		if b.Got == b.Want {
			bad++
		}
	}
	row("bad inputs answered as expected", fmt.Sprintf("%d / %d", bad, len(r.BadInputs)), "")
	row("peak memory starter / worker", fmt.Sprintf("%.1f MiB / %.1f MiB", float64(r.PeakStarterKB)/1024, float64(r.PeakWorkerKB)/1024), "VmHWM")
	tw.Flush()
	// Parked steps, grouped by step and cause.
	counts := map[string]int{}
	var keys []string
	for _, p := range r.Parked {
		k := parkedKind(p)
		if counts[k] == 0 {
			keys = append(keys, k)
		}
		counts[k]++
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "parked %3d× %s\n", counts[k], k)
	}
	for i, p := range r.Problems {
		if i == 20 {
			fmt.Fprintf(w, "... and %d more problems\n", len(r.Problems)-20)
			break
		}
		fmt.Fprintln(w, "problem:", p)
	}
}

// parkedKind reduces a parked step to its step name and kind of cause.
func parkedKind(p string) string {
	step, cause, _ := strings.Cut(p, "\x00")
	if strings.HasPrefix(step, "record event") {
		step = "record event"
	}
	switch {
	case strings.Contains(cause, "circuit open"):
		cause = "mail circuit breaker open"
	case strings.Contains(cause, "connection refused"):
		cause = "mail server refused the connection"
	case strings.Contains(cause, "budget exhausted"):
		cause = "retry budget exhausted"
	}
	return step + " (" + cause + ")"
}
