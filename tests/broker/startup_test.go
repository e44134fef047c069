package broker

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kafscale/kafscale/tests/brokertest"
	"github.com/kafscale/kafscale/tests/testenv"
)

// TestStartupGate: a broker that cannot read its metadata from etcd or write to S3 within
// KAFSCALE_STARTUP_TIMEOUT_SEC exits non-zero and says what failed; a bad setting exits 2
// naming the variable.
func TestStartupGate(t *testing.T) {
	be := startBackend(t)
	base := []string{
		"KAFSCALE_BROKER_ADDR=127.0.0.1:0",
		"KAFSCALE_METRICS_ADDR=127.0.0.1:0",
		"KAFSCALE_STARTUP_TIMEOUT_SEC=2",
		"KAFSCALE_ETCD_ENDPOINTS=" + be.etcd.Endpoints()[0],
		"KAFSCALE_S3_BUCKET=" + be.s3.Bucket,
		"KAFSCALE_S3_ENDPOINT=" + be.s3.Endpoint,
		"KAFSCALE_S3_REGION=" + be.s3.Region,
		"KAFSCALE_S3_ACCESS_KEY=" + be.s3.AccessKey,
		"KAFSCALE_S3_SECRET_KEY=" + be.s3.SecretKey,
		"KAFSCALE_S3_PATH_STYLE=true",
	}
	deadPort := testenv.FreePort(t)
	cases := []struct {
		name     string
		env      []string
		wantCode int
		wantText string
	}{
		{"etcd unreachable", []string{"KAFSCALE_ETCD_ENDPOINTS=http://127.0.0.1:" + itoa(deadPort)}, 1, "read metadata"},
		{"wrong S3 credentials", []string{"KAFSCALE_S3_SECRET_KEY=wrong"}, 1, "probe object"},
		{"missing bucket", []string{"KAFSCALE_S3_BUCKET=no-such-bucket"}, 1, "probe object"},
		{"bad setting", []string{"KAFSCALE_PRODUCE_SYNC_FLUSH=sometimes"}, 2, "KAFSCALE_PRODUCE_SYNC_FLUSH"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(brokertest.Binary(t))
			cmd.Env = append(append(os.Environ(), base...), tc.env...)
			done := make(chan struct{})
			var out []byte
			var err error
			go func() {
				out, err = cmd.CombinedOutput()
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatal("broker still running 60s after a 2s startup timeout")
			}
			exit, ok := err.(*exec.ExitError)
			if !ok || exit.ExitCode() != tc.wantCode {
				t.Fatalf("exit %v, want status %d; output:\n%s", err, tc.wantCode, out)
			}
			if !strings.Contains(string(out), tc.wantText) {
				t.Fatalf("output does not mention %q:\n%s", tc.wantText, out)
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// An S3 that is down when the broker starts but comes back within
// KAFSCALE_STARTUP_TIMEOUT_SEC does not stop the broker: the probe is retried.
func TestStartupWaitsForS3WithinTimeout(t *testing.T) {
	be := startBackend(t)
	be.s3.Stop()
	// restarting closes the moment S3 may come back: Start returns only once the server
	// answers, and the broker's probe can succeed before that.
	restarting, restarted := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(restarted)
		time.Sleep(2 * time.Second)
		close(restarting)
		be.s3.Start()
	}()
	defer func() { <-restarted }() // before the cleanups stop S3
	be.startBroker(t, 0, "KAFSCALE_STARTUP_TIMEOUT_SEC=30")
	select {
	case <-restarting:
	default:
		t.Fatal("the broker reported ready while S3 was still down: its startup gate did not probe S3")
	}
}
