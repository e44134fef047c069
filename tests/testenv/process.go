package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BinDir returns the directory holding the test binaries: $KAFSCALE_TEST_BIN, or ./bin at
// the repository root (found by walking up to go.mod).
func BinDir(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("KAFSCALE_TEST_BIN"); dir != "" {
		return dir
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return filepath.Join(root, "bin")
}

// RepoRoot returns the repository root: the nearest directory above the working directory
// holding the main module's go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			bytes.HasPrefix(data, []byte("module github.com/kafscale/kafscale\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root (go.mod of github.com/kafscale/kafscale) not found above the working directory")
		}
		dir = parent
	}
}

// Binary returns the path of a test binary and fails the test, naming `make tools`, when it
// is missing.
func Binary(t testing.TB, name string) string {
	t.Helper()
	path := filepath.Join(BinDir(t), name)
	info, err := os.Stat(path)
	if err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
		t.Fatalf("testenv: %s is missing (looked for %s): run `make tools` to install the pinned test binaries", name, path)
	}
	return path
}

// FreePort returns a TCP port on 127.0.0.1 that was free when asked, below the kernel's
// ephemeral range. A port the kernel handed out for 127.0.0.1:0 goes back to that range
// once closed, where any outgoing connection (test packages run side by side) may take it
// before the process it was meant for listens on it, or between a broker's stop and its
// restart on the same port: CI saw "bind: address already in use" from exactly that.
func FreePort(t testing.TB) int {
	t.Helper()
	lo, _ := ephemeralPorts()
	if lo > minTestPort+1000 {
		for range 200 {
			port := minTestPort + rand.IntN(lo-minTestPort)
			if _, taken := handedOut.LoadOrStore(port, true); taken {
				continue // given to an earlier caller of this process, maybe not bound yet
			}
			if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
				l.Close()
				return port
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0") // no room below the range: take the kernel's
	if err != nil {
		t.Fatalf("testenv: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// minTestPort is the lowest port FreePort picks (above the usual service ports).
const minTestPort = 15000

// handedOut holds the ports FreePort has returned in this process.
var handedOut sync.Map

// ephemeralPorts returns the kernel's range of ports for outgoing connections and :0
// listeners (Linux's net.ipv4.ip_local_port_range; its default where it cannot be read).
func ephemeralPorts() (lo, hi int) {
	lo, hi = 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var l, h int
		if n, _ := fmt.Sscan(string(b), &l, &h); n == 2 && l > 0 && h >= l {
			lo, hi = l, h
		}
	}
	return lo, hi
}

// process is a child process in its own process group, killed with its group when the test
// ends (or when the test binary dies, through the parent-death signal).
type process struct {
	name    string
	path    string
	args    []string
	env     []string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s is already running", p.name)
	}
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log for %s: %w", p.name, err)
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}()
	p.cmd, p.done = cmd, done
	return nil
}

// stop sends SIGTERM to the process group, waits up to grace, then kills the group.
func (p *process) stop(grace time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd, p.done = nil, nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	// Anything left in the group (there should be nothing) goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// exited reports whether the process has ended on its own.
func (p *process) exited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return true
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// logTail returns the last bytes of the process log, for failure messages.
func (p *process) logTail() string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	const max = 4000
	if len(data) > max {
		data = data[len(data)-max:]
	}
	return string(data)
}

// waitFor polls ready until it succeeds, the process exits, or the timeout passes.
func (p *process) waitFor(timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s exited during startup; log:\n%s", p.name, p.logTail())
		}
		if last = ready(); last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s: %v; log:\n%s", p.name, timeout, last, p.logTail())
}

func itoa(i int) string { return strconv.Itoa(i) }
