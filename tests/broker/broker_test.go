// Package broker holds the broker's integration tests: the real broker binary against a
// real etcd and a real S3 server (tests/testenv), driven by Kafka clients written by others
// — kcat (librdkafka), franz-go, IBM/sarama, segmentio/kafka-go — and by hand-made frames.
package broker

import (
	"bytes"
	"context"
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

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// brokerBinary builds the broker once per test run.
func brokerBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := testenv.RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "kafscale-broker-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "broker")
		cmd := exec.Command("go", "build", "-o", binPath, "./broker")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./broker: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// backend is a real etcd and a real S3 server shared by the brokers of one test.
type backend struct {
	etcd *testenv.Etcd
	s3   *testenv.S3
}

func startBackend(t *testing.T) *backend {
	t.Helper()
	return &backend{etcd: testenv.StartEtcd(t), s3: testenv.StartS3(t)}
}

// brokerProc is the broker binary running as a child process.
type brokerProc struct {
	t           *testing.T
	nodeID      int
	env         []string
	Addr        string // host:port clients bootstrap from
	MetricsAddr string
	logPath     string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	exit error
}

// startBroker runs a broker with the test settings plus extra KAFSCALE_* overrides, and waits
// until /readyz answers.
func (b *backend) startBroker(t *testing.T, nodeID int, extra ...string) *brokerProc {
	t.Helper()
	port := testenv.FreePort(t)
	p := &brokerProc{
		t:           t,
		nodeID:      nodeID,
		Addr:        net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		MetricsAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t))),
		logPath:     filepath.Join(t.TempDir(), fmt.Sprintf("broker-%d.log", nodeID)),
	}
	p.env = append([]string{
		"KAFSCALE_BROKER_ID=" + strconv.Itoa(nodeID),
		"KAFSCALE_BROKER_ADDR=" + p.Addr,
		"KAFSCALE_METRICS_ADDR=" + p.MetricsAddr,
		"KAFSCALE_ETCD_ENDPOINTS=" + b.etcd.Endpoints()[0],
		"KAFSCALE_S3_BUCKET=" + b.s3.Bucket,
		"KAFSCALE_S3_ENDPOINT=" + b.s3.Endpoint,
		"KAFSCALE_S3_REGION=" + b.s3.Region,
		"KAFSCALE_S3_ACCESS_KEY=" + b.s3.AccessKey,
		"KAFSCALE_S3_SECRET_KEY=" + b.s3.SecretKey,
		"KAFSCALE_S3_PATH_STYLE=true",
		"KAFSCALE_FLUSH_INTERVAL_MS=50",
		"KAFSCALE_BROKER_LEASE_TTL_SEC=2",
		"KAFSCALE_LOG_LEVEL=debug",
	}, extra...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("broker %d log tail:\n%s", nodeID, p.logTail())
		}
		p.kill()
	})
	p.Start()
	return p
}

// Start (re)starts the process with the same settings and ports and waits until ready.
func (p *brokerProc) Start() {
	p.t.Helper()
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(brokerBinary(p.t))
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start broker: %v", err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logFile.Close()
		p.mu.Lock()
		p.exit = err
		p.mu.Unlock()
		close(done)
	}()
	p.waitReady()
}

func (p *brokerProc) waitReady() {
	p.t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			p.t.Fatalf("broker %d exited during startup (%v); log:\n%s", p.nodeID, p.exit, p.logTail())
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
	p.t.Fatalf("broker %d not ready after 60s; log:\n%s", p.nodeID, p.logTail())
}

// Stop sends SIGTERM and waits for a clean exit (status 0).
func (p *brokerProc) Stop() {
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
		p.t.Fatalf("broker %d did not exit within 60s of SIGTERM; log:\n%s", p.nodeID, p.logTail())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exit != nil {
		p.t.Fatalf("broker %d exited with %v after SIGTERM; log:\n%s", p.nodeID, p.exit, p.logTail())
	}
	p.cmd = nil
}

// Kill sends SIGKILL: no flush, no deregistration.
func (p *brokerProc) Kill() { p.kill() }

func (p *brokerProc) kill() {
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

func (p *brokerProc) logTail() string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	if len(data) > 6000 {
		data = data[len(data)-6000:]
	}
	return string(data)
}

// metrics returns the broker's /metrics text.
func (p *brokerProc) metrics(t *testing.T) string {
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

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
