package broker

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/kafscale/kafscale/tests/brokertest"
	"github.com/kafscale/kafscale/tests/testenv"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTraceKafka: with KAFSCALE_TRACE_KAFKA=true a kcat produce leaves one "kafka request"
// and one "kafka response" line per request, each naming the API, version, client id,
// correlation id and sizes, the response its outcome; every Produce request read is
// answered under the same correlation id. Without the setting there are no such lines.
func TestTraceKafka(t *testing.T) {
	kcat := kcatPath(t)
	be := startBackend(t)
	b := be.startBroker(t, 0, "KAFSCALE_TRACE_KAFKA=true", "KAFSCALE_LOG_LEVEL=warn")
	produce := exec.Command(kcat, "-b", b.Addr, "-P", "-t", "traced", "-X", "client.id=trace-me", "-X", "acks=all")
	produce.Stdin = strings.NewReader("one\ntwo\nthree\n")
	if out, err := produce.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}
	log, err := os.ReadFile(b.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`msg="kafka (request|response)"(?: node=\d+)? api=(\w+) version=(\d+) client_id=(\S+) correlation_id=(\d+) bytes=(\d+)(?: outcome=("[^"]*"|\S+))?`)
	requests := map[string]bool{}  // Produce correlation ids read
	responses := map[string]bool{} // Produce correlation ids answered ok
	apis := map[string]bool{}
	for _, m := range line.FindAllStringSubmatch(string(log), -1) {
		if m[4] != "trace-me" {
			continue
		}
		apis[m[2]] = true
		if m[6] == "0" && m[7] != `"no response (acks=0)"` {
			t.Errorf("a line with no size: %s", m[0])
		}
		if m[2] != "Produce" {
			continue
		}
		if m[1] == "request" {
			requests[m[5]] = true
		} else if m[7] == "ok" {
			responses[m[5]] = true
		} else {
			t.Errorf("produce answered with %s: %s", m[7], m[0])
		}
	}
	if !apis["ApiVersions"] || !apis["Metadata"] || len(requests) == 0 {
		t.Fatalf("traced APIs %v, %d produce requests; want ApiVersions, Metadata and Produce of client trace-me in:\n%s", apis, len(requests), testenv.GrepLines(string(log), "kafka "))
	}
	for id := range requests {
		if !responses[id] {
			t.Errorf("Produce with correlation id %s has no ok response line", id)
		}
	}

	quiet := be.startBroker(t, 1)
	produce = exec.Command(kcat, "-b", quiet.Addr, "-P", "-t", "untraced")
	produce.Stdin = strings.NewReader("x\n")
	if out, err := produce.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}
	if log, _ := os.ReadFile(quiet.LogPath()); bytes.Contains(log, []byte(`msg="kafka request"`)) {
		t.Errorf("a broker without KAFSCALE_TRACE_KAFKA traced requests:\n%s", testenv.GrepLines(string(log), "kafka request"))
	}
}

// TestMemoryS3: with KAFSCALE_USE_MEMORY_S3=true a broker needs no S3 server: records are
// produced and read back, the real S3 server gets no object, and the broker warns in its log
// and in kafscale_s3_in_memory that nothing survives a restart.
func TestMemoryS3(t *testing.T) {
	be := startBackend(t)
	// The S3 settings brokertest passes point at the real server; the in-memory store must
	// ignore them (and no bucket of that server may be touched).
	b := be.startBroker(t, 0, "KAFSCALE_USE_MEMORY_S3=true")
	ctx := testContext(t, time.Minute)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.DefaultProduceTopic("mem"), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeTopics("mem"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, v := range []string{"a", "b", "c"} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	var got []string
	for len(got) < 3 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("fetch: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if strings.Join(got, "") != "abc" {
		t.Fatalf("read back %q", got)
	}
	if m := b.Metrics(t); !strings.Contains(m, "\nkafscale_s3_in_memory 1\n") || !strings.Contains(m, "kafscale_s3_puts_total") {
		t.Fatalf("metrics:\n%s", testenv.GrepLines(m, "kafscale_s3_"))
	}
	if log := b.LogTail(); !strings.Contains(log, "KAFSCALE_USE_MEMORY_S3=true") || !strings.Contains(log, "LOST when it exits") {
		t.Fatalf("no startup warning:\n%s", log)
	}
	list, err := be.s3.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(be.s3.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Contents) != 0 {
		t.Fatalf("the real S3 server holds %d objects, first %s; the in-memory store should have kept them", len(list.Contents), aws.ToString(list.Contents[0].Key))
	}

	// A broker on real S3 says so.
	if m := be.startBroker(t, 1).Metrics(t); !strings.Contains(m, "\nkafscale_s3_in_memory 0\n") {
		t.Fatalf("broker on S3: %s", testenv.GrepLines(m, "kafscale_s3_in_memory"))
	}
}

// Broker variables of the operations guide are read: a bad value stops the
// broker naming it, and conflicting pairs stop it naming both. The names are the guide's,
// copied here on purpose so that renaming a variable in the project breaks this test.
func TestGuideBrokerVariablesRefuseBadValues(t *testing.T) {
	bad := map[string]string{
		"KAFSCALE_ACL_ENABLED":           "sometimes",
		"KAFSCALE_ACL_FAIL_OPEN":         "perhaps",
		"KAFSCALE_TRACE_KAFKA":           "verbose",
		"KAFSCALE_THROUGHPUT_WINDOW_SEC": "0",
		"KAFSCALE_USE_MEMORY_S3":         "ram",
	}
	for name, value := range bad {
		cmd := exec.Command(brokertest.Binary(t))
		cmd.Env = append(os.Environ(), "KAFSCALE_S3_BUCKET=b", name+"="+value)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), name+"=") {
			t.Errorf("%s=%s: exit %v, output:\n%s", name, value, err, out)
		}
	}
	// Conflicting pairs are refused naming both.
	for _, pair := range [][2]string{
		{"KAFSCALE_S3_KMS_ARN=arn:aws:kms:us-east-1:1:key/a", "KAFSCALE_S3_KMS_KEY_ID=arn:aws:kms:us-east-1:1:key/b"},
		{`KAFSCALE_ACL_JSON={"default_policy":"deny"}`, "KAFSCALE_ACL_FILE=/etc/acl.json"},
	} {
		cmd := exec.Command(brokertest.Binary(t))
		cmd.Env = append(os.Environ(), "KAFSCALE_S3_BUCKET=b", pair[0], pair[1])
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		n0, _, _ := strings.Cut(pair[0], "=")
		n1, _, _ := strings.Cut(pair[1], "=")
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), n0) || !strings.Contains(string(out), n1) {
			t.Errorf("%s with %s: exit %v, output:\n%s", n0, n1, err, out)
		}
	}
}

// TestGuideMetrics: the series the guide's CRR alerts and troubleshooting read, on a real
// broker with an empty read replica: a cold read falls back to the primary (both counter
// names count it, the miss ratio is 1), the GETs are timed in the read-latency histogram,
// the mean S3 latency is reported, and a franz-go consumer group shows its member.
func TestGuideMetrics(t *testing.T) {
	be := startBackend(t)
	ctx := testContext(t, 2*time.Minute)
	replica := be.s3.Bucket + "-replica"
	if _, err := be.s3.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(replica)}); err != nil {
		t.Fatal(err)
	}
	b := be.startBroker(t, 0, "KAFSCALE_S3_READ_BUCKET="+replica)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.DefaultProduceTopic("crr"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	cl.Close()
	b.Stop()
	b.Start() // a cold cache: the records come from S3

	cons, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ConsumerGroup("crr-readers"), kgo.ConsumeTopics("crr"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for n := 0; n < 3; {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		n += fs.NumRecords()
	}
	m := b.Metrics(t)
	value := func(series string) float64 {
		for _, line := range strings.Split(m, "\n") {
			if rest, ok := strings.CutPrefix(line, series+" "); ok {
				v, err := strconv.ParseFloat(rest, 64)
				if err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				return v
			}
		}
		t.Fatalf("/metrics lacks %s:\n%s", series, testenv.GrepLines(m, "kafscale_"))
		return 0
	}
	fallbacks := value("kafscale_s3_replica_fallback_total")
	if fallbacks < 1 || fallbacks != value("kafscale_s3_replica_fallbacks_total") {
		t.Errorf("fallbacks %g (guide's name), %g (project's); want the same count, at least 1", fallbacks, value("kafscale_s3_replica_fallbacks_total"))
	}
	if r := value("kafscale_s3_replica_miss_ratio"); r != 1 {
		t.Errorf("miss ratio %g with an empty replica, want 1", r)
	}
	if n := value("kafscale_s3_read_latency_ms_count"); n < 2*fallbacks {
		t.Errorf("%g GETs timed, want at least %g (each fallback is a replica and a primary GET)", n, 2*fallbacks)
	}
	if v := value("kafscale_s3_latency_ms_avg"); v <= 0 {
		t.Errorf("mean S3 latency %g after S3 calls", v)
	}
	if v := value(`kafscale_consumer_group_members{group="crr-readers"}`); v != 1 {
		t.Errorf("crr-readers has %g members, want 1", v)
	}

	// docs/grafana/broker-dashboard.json queries only series this broker exports.
	exported := map[string]bool{}
	for _, line := range strings.Split(m, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, " ")
		name, _, _ = strings.Cut(name, "{")
		exported[name] = true
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	testenv.CheckDashboard(t, filepath.Join(root, "docs", "grafana", "broker-dashboard.json"), exported)
}
