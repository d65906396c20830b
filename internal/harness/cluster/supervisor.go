package cluster

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// supervisor runs processes, restarts one that exits while the cluster
// runs, and stops them all, the last started first.
type supervisor struct {
	log  *slog.Logger
	logs string
	mu   sync.Mutex
	// procs in start order.
	procs []*supervised
}

type supervised struct {
	name     string
	mu       sync.Mutex
	cmd      *exec.Cmd
	stopping bool
	done     chan struct{} // closed when the supervising goroutine ends
}

func (s *supervisor) start(ctx context.Context, name, bin string, args, env []string) {
	p := &supervised{name: name, done: make(chan struct{})}
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	go func() {
		defer close(p.done)
		for restarts := 0; ; restarts++ {
			f, err := os.OpenFile(filepath.Join(s.logs, name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err != nil {
				s.log.Error("log file", "process", name, "error", err)
				return
			}
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), env...)
			cmd.Stdout, cmd.Stderr = f, f
			// Its own process group: Ctrl-C reaches the supervisor, which
			// stops the processes in order.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			p.mu.Lock()
			if p.stopping {
				p.mu.Unlock()
				f.Close()
				return
			}
			err = cmd.Start()
			p.cmd = cmd
			p.mu.Unlock()
			if err != nil {
				f.Close()
				s.log.Error("start failed", "process", name, "error", err)
				return
			}
			s.log.Info("started", "process", name, "pid", cmd.Process.Pid, "restarts", restarts)
			err = cmd.Wait()
			f.Close()
			p.mu.Lock()
			stopping := p.stopping
			p.mu.Unlock()
			if stopping || ctx.Err() != nil {
				return
			}
			s.log.Warn("process exited; restarting it in 2s", "process", name, "error", err, "log", f.Name())
			select {
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Second):
			}
		}
	}()
}

// stopAll sends SIGTERM to each process, last started first, and SIGKILL
// to one still running after 20 s.
func (s *supervisor) stopAll() {
	s.mu.Lock()
	procs := s.procs
	s.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		p.mu.Lock()
		p.stopping = true
		cmd := p.cmd
		p.mu.Unlock()
		if cmd != nil && cmd.Process != nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			if cmd != nil && cmd.Process != nil {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
			<-p.done
		}
		s.log.Info("stopped", "process", p.name)
	}
}
