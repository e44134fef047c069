package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kafscale/kafscale/broker/control"
	"github.com/kafscale/kafscale/broker/control/controlpb"
	"github.com/kafscale/kafscale/tests/brokertest"
	"github.com/kafscale/kafscale/tests/testenv"
)

// producer keeps producing acks=all records with franz-go's defaults (retries included) until
// stopped, and remembers where each acknowledged record went.
type producer struct {
	mu     sync.Mutex
	acked  map[string]record
	errs   []error
	notify chan struct{} // receives after each acknowledgement (never blocks)
	stop   chan struct{}
	done   chan struct{}
}

func startProducer(t *testing.T, ctx context.Context, seed, topic string) *producer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	p := &producer{acked: map[string]record{}, notify: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer cl.Close()
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				_ = cl.Flush(ctx)
				return
			default:
			}
			key := fmt.Sprintf("k-%07d", i)
			cl.Produce(ctx, &kgo.Record{Key: []byte(key), Value: []byte("v-" + key)}, func(r *kgo.Record, err error) {
				p.mu.Lock()
				defer p.mu.Unlock()
				if err != nil {
					p.errs = append(p.errs, fmt.Errorf("%s: %w", key, err))
					return
				}
				p.acked[key] = record{partition: r.Partition, offset: r.Offset, key: key, value: string(r.Value)}
				select {
				case p.notify <- struct{}{}:
				default:
				}
			})
			if i%100 == 99 {
				_ = cl.Flush(ctx) // a bounded number in flight
			}
		}
	}()
	return p
}

func (p *producer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked)
}

// waitAcked waits until n records are acknowledged in all.
func (p *producer) waitAcked(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	for p.count() < n {
		select {
		case <-p.notify:
		case <-ctx.Done():
			t.Fatalf("only %d of %d records acknowledged before the test deadline; errors: %v", p.count(), n, p.errors())
		}
	}
}

func (p *producer) errors() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]error(nil), p.errs...)
}

func (p *producer) finish() {
	close(p.stop)
	<-p.done
}

// TestDrainThroughControlService: three brokers with the control service and a producer
// running; Drain on one broker — the leader-assignment controller, the harder case: the
// election moves too — moves its partitions to the other two, the producer goes on
// without an error, every acknowledged record reads back where it was acknowledged with dense
// offsets, the broker stays drained (a second Drain is a no-op), its preStop command
// (drain-wait) returns once it is drained, and SIGTERM afterwards exits cleanly.
func TestDrainThroughControlService(t *testing.T) {
	be := startBackend(t)
	brokers := brokertest.StartAll(t,
		brokertest.Options{NodeID: 0, Etcd: be.etcd, S3: be.s3, Control: true},
		brokertest.Options{NodeID: 1, Etcd: be.etcd, S3: be.s3, Control: true},
		brokertest.Options{NodeID: 2, Etcd: be.etcd, S3: be.s3, Control: true},
	)
	ctx := testContext(t, 4*time.Minute)
	var ctrl int32 = -1
	testenv.WaitFor(t, ctx, "three brokers and a controller in the metadata", func() bool {
		m := metadata(t, ctx, brokers[0].Addr, "")
		ctrl = m.ControllerID
		return len(m.Brokers) == 3 && ctrl >= 0 && ctrl <= 2
	})
	victim, other := brokers[ctrl], int32((ctrl+1)%3)
	seed := brokers[other].Addr
	createTopic(t, seed, "drain", 6)
	testenv.WaitFor(t, ctx, "partitions led by all three brokers", func() bool {
		leaders := map[int32]bool{}
		for _, p := range metadata(t, ctx, seed, "drain").Topics[0].Partitions {
			leaders[p.Leader] = true
		}
		return len(leaders) == 3 && !leaders[-1]
	})
	var led []int32
	for _, p := range metadata(t, ctx, seed, "drain").Topics[0].Partitions {
		if p.Leader == ctrl {
			led = append(led, p.Partition)
		}
	}

	cli, err := control.Dial(victim.ControlAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var st *controlpb.StatusResponse
	testenv.WaitFor(t, ctx, fmt.Sprintf("broker %d reporting %d claimed partitions", ctrl, len(led)), func() bool {
		if st, err = cli.Status(ctx); err != nil {
			t.Fatal(err)
		}
		return int(st.LeadPartitions) == len(led)
	})
	if st.NodeId != ctrl || st.State != controlpb.StatusResponse_SERVING {
		t.Fatalf("status before the drain: %v, want node %d serving", st, ctrl)
	}

	// A Drain for another node id is refused and changes nothing.
	if _, err := cli.Drain(ctx, other, "wrong broker"); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("drain naming node %d at node %d: %v, want FailedPrecondition", other, ctrl, err)
	}
	if st, err := cli.Status(ctx); err != nil || st.State != controlpb.StatusResponse_SERVING {
		t.Fatalf("status after a refused drain: %v %v, want serving", st, err)
	}

	// The preStop hook's command, started before the drain, returns once it is drained.
	waitOut := &bytes.Buffer{}
	wait := exec.Command(brokertest.Binary(t), "drain-wait", "-timeout", "2m", "-interval", "100ms")
	wait.Env = []string{"KAFSCALE_CONTROL_ADDR=" + victim.ControlAddr}
	wait.Stdout, wait.Stderr = waitOut, waitOut
	if err := wait.Start(); err != nil {
		t.Fatal(err)
	}

	prod := startProducer(t, ctx, seed, "drain")
	prod.waitAcked(t, ctx, 3000)

	start := time.Now()
	res, err := cli.Drain(ctx, ctrl, "test drain")
	took := time.Since(start)
	if err != nil {
		t.Fatalf("drain: %v", err)
	}
	t.Logf("Drain took %s (broker says %d ms): released %d partitions, flushed %d buffered bytes, %d records acknowledged so far",
		took.Round(time.Millisecond), res.DurationMs, len(res.Released), res.FlushedBytes, prod.count())
	if res.NodeId != ctrl || res.AlreadyDrained || len(res.Released) != len(led) {
		t.Fatalf("drain result %v, want node %d releasing partitions %v", res, ctrl, led)
	}
	for _, r := range res.Released {
		if r.Topic != "drain" {
			t.Fatalf("released %v, want only partitions of topic drain", r)
		}
	}
	movedAt := time.Now()
	testenv.WaitFor(t, ctx, "no partition led by the drained broker, which is gone from the metadata with a new controller", func() bool {
		m := metadata(t, ctx, seed, "drain")
		for _, b := range m.Brokers {
			if b.NodeID == ctrl {
				return false
			}
		}
		for _, p := range m.Topics[0].Partitions {
			if p.Leader == ctrl || p.Leader < 0 {
				return false
			}
		}
		return m.ControllerID >= 0 && m.ControllerID != ctrl
	})
	t.Logf("metadata on broker %d showed the new leaders %s after Drain returned", other, time.Since(movedAt).Round(time.Millisecond))

	// The producer goes on: as many records again are acknowledged after the drain.
	after := prod.count()
	prod.waitAcked(t, ctx, after+3000)

	if err := wait.Wait(); err != nil {
		t.Fatalf("drain-wait: %v\n%s", err, waitOut)
	}
	t.Logf("drain-wait: %s", strings.TrimSpace(waitOut.String()))

	again, err := cli.Drain(ctx, ctrl, "second drain")
	if err != nil {
		t.Fatalf("second drain: %v", err)
	}
	if !again.AlreadyDrained || len(again.Released) != len(res.Released) || again.DurationMs != res.DurationMs {
		t.Fatalf("second drain %v, want the first result with already_drained", again)
	}
	prod.finish()
	if errs := prod.errors(); len(errs) > 0 {
		t.Fatalf("%d produce errors, first: %v", len(errs), errs[0])
	}

	// Still drained after everything above: nothing led, not registered, Status says so.
	st, err = cli.Status(ctx)
	if err != nil || st.State != controlpb.StatusResponse_DRAINED || st.LeadPartitions != 0 {
		t.Fatalf("status after the drain: %v %v, want drained leading nothing", st, err)
	}
	for _, p := range metadata(t, ctx, seed, "drain").Topics[0].Partitions {
		if p.Leader == ctrl {
			t.Fatalf("partition %d is led by the drained broker again", p.Partition)
		}
	}
	if resp, err := be.etcd.Client().Get(ctx, fmt.Sprintf("/kafscale/default/kafscale/brokers/%d", ctrl)); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("registration of the drained broker: %v %v, want none", resp, err)
	}

	prod.mu.Lock()
	acked := prod.acked
	prod.mu.Unlock()
	t.Logf("%d records acknowledged, %d of them after the drain", len(acked), len(acked)-after)
	got := consumeAll(t, ctx, seed, "drain")
	checkDense(t, got)
	checkAckedReadBack(t, got, acked)

	// SIGTERM after a drain: a clean exit, nothing left to drain.
	victim.Stop()
}

// TestControlClientErrors: bad addresses and a control service that is not there give errors
// that say what is wrong, and the preStop command exits with a status the kubelet reports.
func TestControlClientErrors(t *testing.T) {
	ctx := testContext(t, time.Minute)
	for _, bad := range []string{"", "no-port", "host:port:extra"} {
		if _, err := control.Dial(bad); err == nil || !strings.Contains(err.Error(), "want host:port") {
			t.Errorf("Dial(%q): %v, want an error asking for host:port", bad, err)
		}
	}

	free := net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t)))
	cli, err := control.Dial(free)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	_, err = cli.Drain(ctx, 0, "nobody there")
	if status.Code(err) != codes.Unavailable {
		t.Errorf("drain with nothing listening: %v, want Unavailable", err)
	}
	if err == nil || !strings.Contains(err.Error(), free) || !strings.Contains(err.Error(), "KAFSCALE_CONTROL_ADDR") {
		t.Errorf("drain with nothing listening: %v, want the address and a hint naming KAFSCALE_CONTROL_ADDR", err)
	}

	run := func(env []string, args ...string) (int, string) {
		cmd := exec.Command(brokertest.Binary(t), append([]string{"drain-wait"}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if code, out := run(nil); code != 2 || !strings.Contains(out, "KAFSCALE_CONTROL_ADDR") {
		t.Errorf("drain-wait without an address: exit %d %q, want 2 naming KAFSCALE_CONTROL_ADDR", code, out)
	}
	start := time.Now()
	code, out := run([]string{"KAFSCALE_CONTROL_ADDR=" + free}, "-timeout", "1s", "-interval", "100ms")
	if code != 1 || !strings.Contains(out, "not drained before the deadline") || !strings.Contains(out, "SIGTERM drains the broker itself") {
		t.Errorf("drain-wait with nothing listening: exit %d %q, want 1 saying it gave up", code, out)
	}
	t.Logf("drain-wait gave up after %s: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
}
