// Package kgo_test runs franz-go's own kgo integration tests (github.com/twmb/franz-go,
// pkg/kgo, at the version pinned in go.mod) against one broker binary backed by a real etcd
// and a real S3 server.
//
// franz-go's module source is copied out of the Go module cache into a temporary directory,
// its kgo test binary is built there once per franz-go version and Go toolchain (cached under
// os.UserCacheDir()/kafscale/kgo-test) and run with KGO_SEEDS pointing at the broker and
// KGO_TEST_RF=1. Its output is read through `go tool test2json`: every selected test must pass,
// none may fail, and every skip (of a subtest) is logged with its reason. What is selected and
// why the rest is excluded: docs/development.md, "franz-go kgo suite".
package kgo_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kafscale/kafscale/tests/brokertest"
	"github.com/kafscale/kafscale/tests/testenv"
)

// selected are the kgo tests that run from `make test`: the group, consume and produce tests
// that talk to a broker. Each must run and pass. Keep docs/development.md in step.
var selected = []string{
	// group
	"TestGroupETL",
	"TestGroupSimple",
	// consume
	"TestIssue325",
	"TestConsumeTopicRetrieval",
	"TestConsumeTopicRetrieval_Many",
	"TestIssue337",
	"TestDirectPartitionPurge",
	"TestIssue434",
	"TestAddRemovePartitions",
	"TestPauseIssue489",
	"TestPauseIssueOct2023",
	"TestIssue523",
	"TestIssue648",
	"TestIssue810",
	"TestIssue865",
	"TestIssueFetchLargerThanBrokerMaxReadBytes",
	"TestPooling",
	"TestHookPollStart",
	"TestConsumeMaxDecompressBatchBytes",
	// produce
	"TestClient_Produce",
	"TestIssueProduceSyncManualPartitionNegativeDoesNotPanic",
	"TestIssue831",
	"TestIssue769",                    // idempotent producer: InitProducerId failure path
	"TestClient_ProduceLargeMessages", // max.message.bytes → MESSAGE_TOO_LARGE
	// client
	"TestPing",
	"TestIssue1034",
	"TestUnknownGroupOffsetFetchPinned",
}

const franzModule = "github.com/twmb/franz-go"

func TestKgoSuite(t *testing.T) {
	run := "^(" + strings.Join(selected, "|") + ")$"
	// KAFSCALE_KGO_RUN replaces the selection (a -test.run pattern) to survey the whole suite;
	// then only what ran is reported and nothing is asserted beyond "no failure".
	survey := os.Getenv("KAFSCALE_KGO_RUN")
	if survey != "" {
		run = survey
	}

	kgoTest, pkgDir := kgoTestBinary(t)

	b := brokertest.Start(t, brokertest.Options{
		Etcd: testenv.StartEtcd(t),
		S3:   testenv.StartS3(t),
		Env: []string{
			"KAFSCALE_FLUSH_INTERVAL_MS=50",
			"KAFSCALE_GROUP_INITIAL_REBALANCE_DELAY_MS=0",
			"KAFSCALE_AUTO_CREATE_TOPICS=true",
			"KAFSCALE_AUTO_CREATE_PARTITIONS=7",
			"KAFSCALE_LOG_LEVEL=info",
		},
	})

	timeout := 8 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("KAFSCALE_KGO_TIMEOUT")); survey != "" && err == nil {
		timeout = d
	}
	cmd := exec.Command("go", "tool", "test2json", "-t", kgoTest,
		"-test.v=test2json", "-test.run", run, "-test.timeout", timeout.String(), "-test.count=1")
	cmd.Dir = pkgDir // some kgo tests read their own source files
	cmd.Env = append(os.Environ(),
		"KGO_SEEDS="+b.Addr,
		"KGO_TEST_RF=1",
		"KGO_LOG_LEVEL=none",
	)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the kgo test binary: %v", err)
	}
	var stream io.Reader = out
	// KAFSCALE_KGO_OUTPUT=<file> keeps the whole test2json stream (goroutine dumps included).
	if path := os.Getenv("KAFSCALE_KGO_OUTPUT"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		stream = io.TeeReader(out, f)
	}
	res := parse(t, stream)
	waitErr := cmd.Wait()
	t.Logf("kgo suite: %s in %s", run, time.Since(start).Round(time.Second))

	res.report(t)
	if stderr.Len() > 0 {
		t.Logf("kgo test binary stderr:\n%s", tail(stderr.String(), 8000))
	}
	if len(res.failed) > 0 {
		t.Errorf("kgo tests failed: %s", strings.Join(res.failed, ", "))
	}
	if waitErr != nil {
		t.Errorf("kgo test binary: %v (a panic or timeout shows in the output above)", waitErr)
	}
	if survey != "" {
		return
	}
	for _, name := range selected {
		switch res.top[name] {
		case "pass":
		case "":
			t.Errorf("%s did not run: is it still in franz-go's kgo suite at the pinned version?", name)
		case "run":
			t.Errorf("%s did not finish (the kgo binary timed out or panicked: see its goroutine dump above)", name)
		default:
			t.Errorf("%s: %s, want pass", name, res.top[name])
		}
	}
}

// event is one line of `go tool test2json`.
type event struct {
	Action  string
	Test    string
	Elapsed float64
	Output  string
}

type results struct {
	top     map[string]string // top-level test -> run (not finished), pass, fail or skip
	elapsed map[string]float64
	failed  []string
	skipped []string // with reasons
	passed  int
	output  map[string]*strings.Builder
	tail    strings.Builder // output outside any test (a panic, the final FAIL)
}

func parse(t *testing.T, r io.Reader) *results {
	res := &results{top: map[string]string{}, elapsed: map[string]float64{}, output: map[string]*strings.Builder{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			res.tail.WriteString(sc.Text() + "\n")
			continue
		}
		if e.Test == "" {
			if e.Action == "output" {
				res.tail.WriteString(e.Output)
			}
			continue
		}
		switch e.Action {
		case "run":
			if !strings.Contains(e.Test, "/") {
				res.top[e.Test] = "run"
			}
		case "output":
			b := res.output[e.Test]
			if b == nil {
				b = &strings.Builder{}
				res.output[e.Test] = b
			}
			if b.Len() < 1<<20 {
				b.WriteString(e.Output)
			}
		case "pass", "fail", "skip":
			if !strings.Contains(e.Test, "/") {
				res.top[e.Test] = e.Action
				res.elapsed[e.Test] = e.Elapsed
				t.Logf("%s %s (%.2fs)", e.Action, e.Test, e.Elapsed) // progress
			}
			switch e.Action {
			case "pass":
				res.passed++
			case "fail":
				res.failed = append(res.failed, e.Test)
			case "skip":
				res.skipped = append(res.skipped, e.Test+": "+skipReason(res.output[e.Test]))
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Errorf("read the kgo test output: %v", err)
	}
	return res
}

// skipReason is what a skipped test logged ("file.go:N: ..." lines, the t.Skip message among
// them; deferred logs may follow it).
var logLine = regexp.MustCompile(`^\s+\w+\.go:\d+: (.*)$`)

func skipReason(b *strings.Builder) string {
	var lines []string
	if b != nil {
		for _, line := range strings.Split(b.String(), "\n") {
			if m := logLine.FindStringSubmatch(line); m != nil {
				lines = append(lines, m[1])
			}
		}
	}
	if len(lines) == 0 {
		return "(no reason given)"
	}
	return strings.Join(lines, "; ")
}

func (res *results) report(t *testing.T) {
	t.Helper()
	names := make([]string, 0, len(res.top))
	for name := range res.top {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		fmt.Fprintf(&b, "  %-4s %-55s %7.2fs\n", res.top[name], name, res.elapsed[name])
	}
	t.Logf("kgo tests (top level): %d; tests and subtests passed: %d, failed: %d, skipped: %d\n%s",
		len(names), res.passed, len(res.failed), len(res.skipped), b.String())
	if len(res.skipped) > 0 {
		t.Logf("skipped:\n  %s", strings.Join(res.skipped, "\n  "))
	}
	for _, name := range res.failed {
		t.Logf("output of failed %s:\n%s", name, tail(res.output[name].String(), 8000))
	}
	if len(res.failed) > 0 || strings.Contains(res.tail.String(), "panic") {
		t.Logf("output outside tests:\n%s", tail(res.tail.String(), 8000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// kgoTestBinary returns franz-go's kgo test binary for the version in go.mod, building it
// when the cache does not hold it yet, and pkg/kgo in a writable copy of franz-go's source.
func kgoTestBinary(t *testing.T) (bin, pkgDir string) {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	version := goOutput(t, root, "list", "-m", "-f", "{{.Version}}", franzModule)
	var dl struct{ Dir, Error string }
	if err := json.Unmarshal([]byte(goOutput(t, root, "mod", "download", "-json", franzModule+"@"+version)), &dl); err != nil {
		t.Fatalf("go mod download %s@%s: %v", franzModule, version, err)
	}
	if dl.Error != "" || dl.Dir == "" {
		t.Fatalf("go mod download %s@%s: %s (no module directory)", franzModule, version, dl.Error)
	}

	// The module cache is read-only; build and run in a writable copy.
	src := filepath.Join(t.TempDir(), "franz-go")
	if err := copyTree(dl.Dir, src); err != nil {
		t.Fatalf("copy %s: %v", dl.Dir, err)
	}
	pkgDir = filepath.Join(src, "pkg", "kgo")

	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("no cache directory for the kgo test binary: %v", err)
	}
	key := fmt.Sprintf("franz-go-%s-%s-%s-%s", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	bin = filepath.Join(cache, "kafscale", "kgo-test", key, "kgo.test")
	if info, err := os.Stat(bin); err == nil && info.Mode().IsRegular() {
		t.Logf("kgo test binary (cached): %s", bin)
		return bin, pkgDir
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := bin + fmt.Sprintf(".%d.tmp", os.Getpid())
	start := time.Now()
	cmd := exec.Command("go", "test", "-c", "-o", tmp, "./pkg/kgo")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build franz-go's kgo tests (go test -c ./pkg/kgo in a copy of %s): %v\n%s", dl.Dir, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("kgo test binary built in %s: %s", time.Since(start).Round(time.Second), bin)
	return bin, pkgDir
}

func goOutput(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// copyTree copies a directory of regular files, making everything writable.
func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		target := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}
