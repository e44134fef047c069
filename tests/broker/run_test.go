package broker

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kafscale/kafscale/tests/testenv"
)

// TestMakeRunKcatExample runs `make run` as a user would, runs the kcat commands it prints,
// and checks the message comes back; then restarts it on the same data directory (the
// message is still there) and runs three brokers from a clean directory.
func TestMakeRunKcatExample(t *testing.T) {
	kcatPath(t)
	dir := t.TempDir()

	run := startMakeRun(t, "-dir", dir)
	if out := run.kcatExample(t); !strings.Contains(out, "hello kafscale") {
		t.Fatalf("the printed kcat example did not read the message back:\n%s", out)
	}
	run.stop(t)

	again := startMakeRun(t, "-dir", dir)
	consume := again.commands[1]
	out, err := exec.Command("sh", "-c", consume).CombinedOutput()
	if err != nil || strings.Count(string(out), "hello kafscale") != 1 {
		t.Fatalf("after a restart, %q: %v\n%s", consume, err, out)
	}
	again.stop(t)

	three := startMakeRun(t, "-dir", dir, "-clean", "-brokers", "3")
	meta, err := exec.Command("kcat", "-b", three.bootstrap, "-L").CombinedOutput()
	if err != nil || !strings.Contains(string(meta), " 3 brokers:") {
		t.Fatalf("kcat -L against BROKERS=3: %v\n%s", err, meta)
	}
	if out := three.kcatExample(t); strings.Count(out, "hello kafscale") != 1 {
		t.Fatalf("CLEAN=1 BROKERS=3: the kcat example read:\n%s", out)
	}
	three.stop(t)
}

type makeRun struct {
	cmd       *exec.Cmd
	done      chan error
	bootstrap string
	commands  []string // the kcat example: produce, then consume
	mu        sync.Mutex
	output    *strings.Builder
	stderr    *syncBuffer
}

// syncBuffer is a strings.Builder safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startMakeRun runs `make run` with free ports and waits for its banner.
func startMakeRun(t *testing.T, flags ...string) *makeRun {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	flags = append(flags, "-kafka-port", strconv.Itoa(freePortPair(t)), "-etcd-port", "0", "-s3-port", "0", "-console-port", "0")
	cmd := exec.Command("make", "--no-print-directory", "-C", root, "run", "RUN_FLAGS="+strings.Join(flags, " "))
	cmd.Env = os.Environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("make run: %v", err)
	}
	r := &makeRun{cmd: cmd, done: make(chan error, 1), output: &strings.Builder{}, stderr: stderr}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
		r.done <- cmd.Wait()
	}()
	for r.bootstrap == "" || len(r.commands) < 2 {
		line, ok := <-lines
		if !ok {
			t.Fatalf("make run ended before printing its kcat example; output:\n%s\nstderr:\n%s", r.output, stderr)
		}
		r.output.WriteString(line + "\n")
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "bootstrap servers : "); ok {
			r.bootstrap = v
		}
		if strings.Contains(line, "kcat -b") {
			r.commands = append(r.commands, line)
		}
	}
	go func() {
		for line := range lines {
			r.mu.Lock()
			r.output.WriteString(line + "\n")
			r.mu.Unlock()
		}
	}()
	return r
}

// kcatExample runs the printed produce and consume commands and returns what consume printed.
func (r *makeRun) kcatExample(t *testing.T) string {
	t.Helper()
	if out, err := exec.Command("sh", "-c", r.commands[0]).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", r.commands[0], err, out)
	}
	out, err := exec.Command("sh", "-c", r.commands[1]).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", r.commands[1], err, out)
	}
	return string(out)
}

// stop interrupts make run as Ctrl-C would and waits for a clean exit.
func (r *makeRun) stop(t *testing.T) {
	t.Helper()
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGINT)
	select {
	case err := <-r.done:
		// make re-raises the SIGINT on itself once its child has exited; the broker's own
		// verdict is on stderr ("kafscale local: ..." on failure).
		var exit *exec.ExitError
		if err != nil && !(errors.As(err, &exit) && exit.ProcessState.Sys().(syscall.WaitStatus).Signal() == syscall.SIGINT) {
			t.Fatalf("make run exited with %v after Ctrl-C\nstderr:\n%s", err, r.stderr)
		}
		r.mu.Lock()
		out := r.output.String()
		r.mu.Unlock()
		if strings.Contains(r.stderr.String(), "kafscale local:") || !strings.Contains(out, "stopping:") {
			t.Fatalf("make run did not stop cleanly\nstdout:\n%s\nstderr:\n%s", out, r.stderr)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("make run did not stop within 60s of Ctrl-C")
	}
}

// freePortPair returns a port p with p..p+7 free (the proxy's and three brokers' Kafka and
// metrics ports).
func freePortPair(t *testing.T) int {
	t.Helper()
	for {
		p := testenv.FreePort(t)
		if p > 65000 {
			continue
		}
		ok := true
		for i := 1; i < 8 && ok; i++ {
			l, err := netListen(p + i)
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			return p
		}
	}
}
