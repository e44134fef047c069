// Package brokertest runs the real broker binary for integration tests: built once per test
// binary from ./broker, started as a child process against a real etcd and a real S3 server
// from tests/testenv, restartable on the same ports, and killed with its process group when
// the test ends.
package brokertest

import (
	"bytes"
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

// program is ./broker, built once per test binary.
var program = testenv.Program{Pkg: "./broker"}

// Binary builds ./broker once per test binary and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	return program.Path(t)
}

// Options says which backend a broker uses and what it overrides.
type Options struct {
	NodeID int
	// Auto runs the broker with KAFSCALE_BROKER_ID=auto (NodeID is then ignored, and
	// Broker.NodeID is -1: the broker claims its id in etcd).
	Auto bool
	Etcd *testenv.Etcd
	S3   *testenv.S3
	// Control serves the control-plane gRPC service (KAFSCALE_CONTROL_ADDR) on a free
	// loopback port, Broker.ControlAddr.
	Control bool
	// Env holds extra KAFSCALE_* settings; they win over the defaults below.
	Env []string
}

// Broker is the broker binary running as a child process.
type Broker struct {
	t           testing.TB
	NodeID      int    // -1 for Options.Auto
	Addr        string // host:port clients bootstrap from
	MetricsAddr string // host:port of /metrics, /healthz, /readyz
	ControlAddr string // host:port of the control service (Options.Control), else empty
	env         []string
	logPath     string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	exit error
}

// Start runs a broker on free loopback ports with test-friendly settings (50 ms flushes,
// 2 s registration lease, debug logs) plus o.Env, and waits until /readyz answers 200. The
// broker is killed when the test ends; its log tail is printed when the test failed.
func Start(t testing.TB, o Options) *Broker {
	t.Helper()
	p := newBroker(t, o)
	p.Start()
	return p
}

// StartAll launches one broker per option at the same time, then waits until each is ready:
// for tests of what brokers starting together do (KAFSCALE_BROKER_ID=auto claims).
func StartAll(t testing.TB, opts ...Options) []*Broker {
	t.Helper()
	out := make([]*Broker, len(opts))
	dones := make([]chan struct{}, len(opts))
	for i, o := range opts {
		out[i] = newBroker(t, o)
		dones[i] = out[i].launch()
	}
	for i, p := range out {
		p.waitReady(dones[i])
	}
	return out
}

func newBroker(t testing.TB, o Options) *Broker {
	t.Helper()
	id := strconv.Itoa(o.NodeID)
	if o.Auto {
		o.NodeID, id = -1, "auto"
	}
	p := &Broker{
		t:           t,
		NodeID:      o.NodeID,
		Addr:        net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t))),
		MetricsAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t))),
		logPath:     filepath.Join(t.TempDir(), "broker-"+id+".log"),
	}
	p.env = append([]string{
		"KAFSCALE_BROKER_ID=" + id,
		"KAFSCALE_BROKER_ADDR=" + p.Addr,
		"KAFSCALE_METRICS_ADDR=" + p.MetricsAddr,
		"KAFSCALE_ETCD_ENDPOINTS=" + o.Etcd.Endpoints()[0],
		"KAFSCALE_S3_BUCKET=" + o.S3.Bucket,
		"KAFSCALE_S3_ENDPOINT=" + o.S3.Endpoint,
		"KAFSCALE_S3_REGION=" + o.S3.Region,
		"KAFSCALE_S3_ACCESS_KEY=" + o.S3.AccessKey,
		"KAFSCALE_S3_SECRET_KEY=" + o.S3.SecretKey,
		"KAFSCALE_S3_PATH_STYLE=true",
		"KAFSCALE_FLUSH_INTERVAL_MS=50",
		"KAFSCALE_BROKER_LEASE_TTL_SEC=2",
		"KAFSCALE_LOG_LEVEL=debug",
	}, o.Env...)
	if o.Control {
		p.ControlAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t)))
		p.env = append([]string{"KAFSCALE_CONTROL_ADDR=" + p.ControlAddr}, p.env...)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("broker %s (%s) log tail:\n%s", id, p.Addr, p.LogTail())
		}
		p.Kill()
	})
	return p
}

// Start (re)starts the process with the same settings and ports and waits until ready.
func (p *Broker) Start() {
	p.t.Helper()
	p.waitReady(p.launch())
}

// launch starts the process and returns the channel closed when it exits.
func (p *Broker) launch() chan struct{} {
	p.t.Helper()
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(Binary(p.t))
	// os/exec keeps the last value of a duplicated key, so Options.Env overrides defaults.
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start broker: %v", err)
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
	return done
}

func (p *Broker) waitReady(done <-chan struct{}) {
	p.t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			p.mu.Lock()
			exit := p.exit
			p.mu.Unlock()
			p.t.Fatalf("broker %d exited during startup (%v); log:\n%s", p.NodeID, exit, p.LogTail())
		default:
		}
		resp, err := client.Get("http://" + p.MetricsAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("broker %d not ready after 60s; log:\n%s", p.NodeID, p.LogTail())
}

// Stop sends SIGTERM and waits for a clean exit (status 0): the graceful drain.
func (p *Broker) Stop() {
	p.t.Helper()
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		p.t.Fatalf("broker %d did not exit within 60s of SIGTERM; log:\n%s", p.NodeID, p.LogTail())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exit != nil {
		p.t.Fatalf("broker %d exited with %v after SIGTERM; log:\n%s", p.NodeID, p.exit, p.LogTail())
	}
	p.cmd = nil
}

// Kill sends SIGKILL to the process group: no flush, no deregistration.
func (p *Broker) Kill() {
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

// PID returns the process id of the running broker, or 0 when it is not running. The
// benchmark harness reads the broker's CPU time and peak RSS from /proc/<pid>.
func (p *Broker) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// LogPath is the file the broker's stdout and stderr go to (appended across restarts).
func (p *Broker) LogPath() string { return p.logPath }

// LogTail returns the end of the broker's log.
func (p *Broker) LogTail() string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	if len(data) > 8000 {
		data = data[len(data)-8000:]
	}
	return string(data)
}

// Metrics returns the broker's /metrics text.
func (p *Broker) Metrics(t testing.TB) string {
	t.Helper()
	resp, err := http.Get("http://" + p.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return buf.String()
}

// Pause stops the process (SIGSTOP): it holds its connections and leases but answers
// nothing, like a hung broker. Resume continues it.
func (p *Broker) Pause() { p.signal(syscall.SIGSTOP) }

// Resume continues a paused process (SIGCONT).
func (p *Broker) Resume() { p.signal(syscall.SIGCONT) }

func (p *Broker) signal(sig syscall.Signal) {
	p.t.Helper()
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil {
		p.t.Fatalf("broker %d is not running", p.NodeID)
	}
	if err := syscall.Kill(-cmd.Process.Pid, sig); err != nil {
		p.t.Fatalf("signal broker %d: %v", p.NodeID, err)
	}
}
