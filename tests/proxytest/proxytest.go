// Package proxytest runs the real proxy binary for integration tests: built once per test
// binary from ./proxy, started as a child process against a real etcd from tests/testenv,
// and killed with its process group when the test ends.
package proxytest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kafscale/kafscale/tests/testenv"
)

var program = testenv.Program{Pkg: "./proxy"}

// Binary builds ./proxy once per test binary and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	return program.Path(t)
}

// Options configure a proxy.
type Options struct {
	Etcd *testenv.Etcd
	// AdvertisedPort, when set, is what the proxy advertises instead of its own port (a
	// relay in front of it).
	AdvertisedPort int
	// Env holds extra KAFSCALE_PROXY_* settings; they win over the defaults.
	Env []string
}

// Proxy is the proxy binary running as a child process.
type Proxy struct {
	t           testing.TB
	Addr        string // host:port of the Kafka listener
	MetricsAddr string // host:port of /metrics, /healthz, /readyz
	env         []string
	logPath     string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	exit error
}

// Start runs a proxy on free loopback ports and waits until /readyz answers 200 (it knows a
// live broker). StartUnready waits only for /healthz.
func Start(t testing.TB, o Options) *Proxy {
	t.Helper()
	p := StartUnready(t, o)
	p.WaitReady()
	return p
}

// StartUnready runs a proxy and waits until its HTTP endpoints answer.
func StartUnready(t testing.TB, o Options) *Proxy {
	t.Helper()
	port := testenv.FreePort(t)
	p := &Proxy{
		t:           t,
		Addr:        net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		MetricsAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t))),
		logPath:     filepath.Join(t.TempDir(), fmt.Sprintf("proxy-%d.log", port)),
	}
	advertised := port
	if o.AdvertisedPort != 0 {
		advertised = o.AdvertisedPort
	}
	p.env = append([]string{
		"KAFSCALE_PROXY_LISTEN_ADDR=" + p.Addr,
		"KAFSCALE_PROXY_ADVERTISED_HOST=127.0.0.1",
		"KAFSCALE_PROXY_ADVERTISED_PORT=" + strconv.Itoa(advertised),
		"KAFSCALE_PROXY_METRICS_ADDR=" + p.MetricsAddr,
		"KAFSCALE_PROXY_ETCD_ENDPOINTS=" + o.Etcd.Endpoints()[0],
		"KAFSCALE_PROXY_LOG_LEVEL=debug",
	}, o.Env...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("proxy %s log tail:\n%s", p.Addr, p.LogTail())
		}
		p.Kill()
	})
	p.launch()
	p.waitHTTP("/healthz")
	return p
}

func (p *Proxy) launch() {
	p.t.Helper()
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(Binary(p.t))
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start proxy: %v", err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done, p.exit = cmd, done, nil
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logFile.Close()
		p.mu.Lock()
		p.exit = err
		p.mu.Unlock()
		close(done)
	}()
}

// WaitReady waits until /readyz answers 200.
func (p *Proxy) WaitReady() {
	p.t.Helper()
	p.waitHTTP("/readyz")
}

func (p *Proxy) waitHTTP(path string) {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		done := p.done
		p.mu.Unlock()
		select {
		case <-done:
			p.t.Fatalf("proxy exited during startup (%v); log:\n%s", p.exit, p.LogTail())
		default:
		}
		if code, _ := p.Get(path); code == http.StatusOK {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("proxy %s not answering 200 on %s after 60s; log:\n%s", p.Addr, path, p.LogTail())
}

// Get fetches an HTTP path of the metrics listener and returns its status and body (0 when
// it does not answer).
func (p *Proxy) Get(path string) (int, string) {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get("http://" + p.MetricsAddr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.String()
}

// Signal sends sig to the proxy process.
func (p *Proxy) Signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(sig)
	}
}

// Wait waits for the process to exit and returns its exit error (nil: status 0).
func (p *Proxy) Wait(timeout time.Duration) error {
	p.t.Helper()
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
	case <-time.After(timeout):
		p.t.Fatalf("proxy did not exit within %s; log:\n%s", timeout, p.LogTail())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cmd = nil
	return p.exit
}

// Kill sends SIGKILL to the process group.
func (p *Proxy) Kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// PID returns the process id, 0 when not running (the benchmark reads its CPU time).
func (p *Proxy) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// LogTail returns the end of the proxy's log.
func (p *Proxy) LogTail() string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	if len(data) > 8000 {
		data = data[len(data)-8000:]
	}
	return string(data)
}

// Metrics returns the /metrics text.
func (p *Proxy) Metrics() string {
	_, body := p.Get("/metrics")
	return body
}
