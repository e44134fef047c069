// Package console tests the console binary against a real cluster — etcd with
// authentication on, versitygw, broker processes, franz-go producers and consumer groups —
// through its API and in headless Chromium (Debian's chromium package, installed by
// `make tools`), driven by chromedp.
//
// Screenshots of every page the tour visits are written to
// $KAFSCALE_TEST_ARTIFACTS/console/<test>/ (default: test-artifacts/ at the repository
// root, ignored by git), numbered in the order they were taken.
package console

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kafscale/kafscale/tests/brokertest"
	"github.com/kafscale/kafscale/tests/testenv"
)

var program = testenv.Program{Pkg: "./console"}

func TestMain(m *testing.M) {
	code := m.Run()
	program.Remove()
	os.Exit(code)
}

// Credentials of the test cluster's etcd: the brokers write as root; the console reads as
// a user whose role may only read the cluster's keys.
const (
	etcdRootPassword    = "root-pw"
	etcdConsoleUser     = "console"
	etcdConsolePassword = "console-pw"
)

// cluster is etcd (with authentication), versitygw and brokers.
type cluster struct {
	etcd    *testenv.Etcd
	s3      *testenv.S3
	root    *clientv3.Client // etcd as root
	brokers []*brokertest.Broker
}

// startCluster starts etcd, turns authentication on with a root user and a read-only
// console user, and starts one broker per node id.
func startCluster(t *testing.T, nodeIDs ...int) *cluster {
	t.Helper()
	c := &cluster{etcd: testenv.StartEtcd(t), s3: testenv.StartS3(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	open := c.etcd.Client()
	for _, step := range []func() error{
		func() error { _, err := open.RoleAdd(ctx, "root"); return err },
		func() error { _, err := open.UserAdd(ctx, "root", etcdRootPassword); return err },
		func() error { _, err := open.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := open.RoleAdd(ctx, "console-read"); return err },
		func() error {
			_, err := open.RoleGrantPermission(ctx, "console-read", "/kafscale/", clientv3.GetPrefixRangeEnd("/kafscale/"), clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { _, err := open.UserAdd(ctx, etcdConsoleUser, etcdConsolePassword); return err },
		func() error { _, err := open.UserGrantRole(ctx, etcdConsoleUser, "console-read"); return err },
		func() error { _, err := open.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("etcd authentication setup: %v", err)
		}
	}
	c.root = c.etcdClient(t, "root", etcdRootPassword)
	for _, id := range nodeIDs {
		c.brokers = append(c.brokers, brokertest.Start(t, brokertest.Options{NodeID: id, Etcd: c.etcd, S3: c.s3,
			Env: []string{"KAFSCALE_ETCD_USERNAME=root", "KAFSCALE_ETCD_PASSWORD=" + etcdRootPassword, "KAFSCALE_GROUP_INITIAL_REBALANCE_DELAY_MS=0"}}))
	}
	return c
}

func (c *cluster) etcdClient(t *testing.T, user, password string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.etcd.Endpoints(), Username: user, Password: password, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("etcd client as %s: %v", user, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func (c *cluster) bootstrap() string { return c.brokers[0].Addr }

// revision is etcd's current revision: it grows with every write, by anyone.
func (c *cluster) revision(t *testing.T) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.root.Get(ctx, "/kafscale/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// consoleProc is the console binary running as a child process.
type consoleProc struct {
	t       *testing.T
	URL     string // base URL, with the path prefix and a trailing slash
	Addr    string
	logPath string
	cmd     *exec.Cmd
}

// startConsole runs the console against c with a 1 s sampling interval under the path
// prefix /kafscale/, plus env, and waits until /readyz answers.
func startConsole(t *testing.T, c *cluster, env ...string) *consoleProc {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t)))
	p := &consoleProc{t: t, Addr: addr, URL: "http://" + addr + "/kafscale/", logPath: filepath.Join(t.TempDir(), "console.log")}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(program.Path(t))
	cmd.Env = append(os.Environ(),
		"KAFSCALE_CONSOLE_HTTP_ADDR="+addr,
		"KAFSCALE_CONSOLE_BASE_PATH=/kafscale/",
		"KAFSCALE_CONSOLE_ETCD_ENDPOINTS="+strings.Join(c.etcd.Endpoints(), ","),
		"KAFSCALE_CONSOLE_ETCD_USERNAME="+etcdConsoleUser,
		"KAFSCALE_CONSOLE_ETCD_PASSWORD="+etcdConsolePassword,
		"KAFSCALE_CONSOLE_SAMPLE_INTERVAL_SEC=1",
	)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start console: %v", err)
	}
	p.cmd = cmd
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		logFile.Close()
		if t.Failed() {
			data, _ := os.ReadFile(p.logPath)
			t.Logf("console log:\n%s", data)
		}
	})
	testenv.Eventually(t, 60*time.Second, func() error {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	})
	return p
}

// get sends GET path (relative to the base URL) with cookies and returns the status and body.
func (p *consoleProc) get(path string, cookies ...*http.Cookie) (int, string) {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.URL+path, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// metric returns the value of one exact series line of the console's /metrics, 0 if absent.
func (p *consoleProc) metric(series string) float64 {
	p.t.Helper()
	resp, err := http.Get("http://" + p.Addr + "/metrics")
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// artifacts is where a test's screenshots go.
func artifacts(t *testing.T) string {
	t.Helper()
	root := os.Getenv("KAFSCALE_TEST_ARTIFACTS")
	if root == "" {
		repo, err := testenv.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		root = filepath.Join(repo, "test-artifacts")
	}
	dir := filepath.Join(root, "console", t.Name())
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
