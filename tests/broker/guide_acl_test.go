package broker

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kafscale/kafscale/tests/brokertest"
	"github.com/kafscale/kafscale/tests/testenv"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"sigs.k8s.io/yaml"
)

// guideACLValues is the operations guide's Helm example, with the principal taken from the
// client id (the chart's default): the guide pairs it with proxy_addr, whose principals are
// addresses, which TestProxyProtocolRequired covers.
const guideACLValues = `operator:
  acl:
    enabled: true
    configJson: |
      {"default_policy":"deny","principals":[
        {"name":"analytics","allow":[{"action":"fetch","resource":"topic","name":"orders-*"}]}
      ]}
`

// TestGuideACLExample: the guide's ACL example, rendered by the chart into the brokers'
// environment and run by a real broker: analytics may fetch orders-1 and nothing else —
// not another topic, not produce, not a consumer group — and nobody else may fetch
// orders-1. Denials are answered in place, counted, and logged at a limited rate naming
// principal, action and resource.
func TestGuideACLExample(t *testing.T) {
	env := renderBrokerEnv(t, guideACLValues)
	if !strings.Contains(strings.Join(env, "\n"), `"default_policy":"deny"`) {
		t.Fatalf("the chart did not pass the document on: %v", env)
	}
	be := startBackend(t)
	// Topics and a record each, written before the ACLs apply.
	open := be.startBroker(t, 0)
	ctx := testContext(t, 2*time.Minute)
	writer, err := kgo.NewClient(kgo.SeedBrokers(open.Addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"orders-1", "payments"} {
		if err := writer.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(topic + " record")}).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
	writer.Close()
	open.Stop()

	b := brokertest.Start(t, brokertest.Options{NodeID: 0, Etcd: be.etcd, S3: be.s3, Env: env})

	analytics := rawClient(t, b.Addr, "analytics")
	// Allowed: Metadata, ListOffsets and Fetch of orders-1, with its record.
	if got := fetchOne(t, analytics, "orders-1"); got.ErrorCode != 0 || len(got.RecordBatches) == 0 {
		t.Fatalf("analytics fetching orders-1: %v, %d bytes of records", kerr.ErrorForCode(got.ErrorCode), len(got.RecordBatches))
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ClientID("analytics"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"orders-1": {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	fs := cons.PollFetches(ctx)
	if err := fs.Err0(); err != nil || fs.NumRecords() != 1 || string(fs.Records()[0].Value) != "orders-1 record" {
		t.Fatalf("franz-go consumer as analytics: %v, %d records", err, fs.NumRecords())
	}

	// Denied: another topic, producing, a consumer group; another principal.
	if got := fetchOne(t, analytics, "payments"); got.ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("analytics fetching payments: %v, want TOPIC_AUTHORIZATION_FAILED", kerr.ErrorForCode(got.ErrorCode))
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ClientID("analytics"), kgo.DisableIdempotentWrite(), kgo.RecordRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "orders-1", Value: []byte("no")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("analytics producing to orders-1: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "orders-readers"
	if resp, err := fc.RequestWith(ctx, analytics); err != nil || resp.ErrorCode != kerr.GroupAuthorizationFailed.Code {
		t.Errorf("analytics finding a group coordinator: %v %v, want GROUP_AUTHORIZATION_FAILED", err, resp)
	}
	if got := fetchOne(t, rawClient(t, b.Addr, "reporting"), "orders-1"); got.ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("reporting fetching orders-1: %v, want TOPIC_AUTHORIZATION_FAILED", kerr.ErrorForCode(got.ErrorCode))
	}

	// 200 denials in one Metadata request log far fewer lines (10 per 10 s).
	md := kmsg.NewPtrMetadataRequest()
	for i := range 200 {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(fmt.Sprintf("secret-%d", i))
		md.Topics = append(md.Topics, rt)
	}
	resp, err := md.RequestWith(ctx, analytics)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range resp.Topics {
		if rt.ErrorCode != kerr.TopicAuthorizationFailed.Code {
			t.Fatalf("metadata of %s: %v, want TOPIC_AUTHORIZATION_FAILED", *rt.Topic, kerr.ErrorForCode(rt.ErrorCode))
		}
	}
	if m := b.Metrics(t); !regexp.MustCompile(`kafscale_acl_denied_total\{api="Metadata"\} 2\d\d`).MatchString(m) {
		t.Errorf("denials not counted:\n%s", testenv.GrepLines(m, "kafscale_acl_denied_total"))
	}
	log, err := os.ReadFile(b.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Count(string(log), `msg="authorization denied"`)
	if lines == 0 || lines > 100 {
		t.Errorf("%d denial lines for over 200 denials; want a few (at most 10 per 10 s)", lines)
	}
	if !strings.Contains(string(log), `msg="authorization denied" node=0 principal=User:analytics action=fetch resource=topic:payments`) {
		t.Errorf("no denial line naming principal, action and resource:\n%s", testenv.GrepLines(string(log), "authorization denied"))
	}
}

// renderBrokerEnv renders the chart with values and returns the brokers' environment (the
// ConfigMap the operator adds to broker pods) as NAME=value entries.
func renderBrokerEnv(t *testing.T, values string) []string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(file, []byte(values), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(testenv.Binary(t, "helm"), "template", "kafscale", filepath.Join(root, "charts", "kafscale"),
		"-f", file, "-s", "templates/operator/broker-env.yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(out, &cm); err != nil {
		t.Fatalf("broker env ConfigMap: %v\n%s", err, out)
	}
	var env []string
	for k, v := range cm.Data {
		env = append(env, k+"="+v)
	}
	return env
}

// rawClient is a franz-go client with the given client id, for hand-made requests.
func rawClient(t *testing.T, addr, clientID string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID(clientID))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// fetchOne fetches partition 0 of topic from offset 0 and returns its answer.
func fetchOne(t *testing.T, cl *kgo.Client, topic string) kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.Version = 11
	req.MaxBytes, req.MaxWaitMillis = 1<<20, 100
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	p := kmsg.NewFetchRequestTopicPartition()
	p.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, p)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testContext(t, time.Minute), cl)
	if err != nil {
		t.Fatalf("fetch %s: %v", topic, err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch %s: %+v", topic, resp)
	}
	return resp.Topics[0].Partitions[0]
}
