package groups_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/kafscale/kafscale/tests/testenv"
	"github.com/segmentio/kafka-go"
)

// member is any consumer-group member under test: what it consumed so far, and a stop.
type member interface {
	consumed() []string
	close()
}

// rebalanceScenario is what every client must pass: a first member consumes batch A alone,
// a second member joins (a rebalance that gives both members partitions), batch B is split
// between them, and no record is consumed twice.
func rebalanceScenario(t *testing.T, c *cluster, b *broker, topic, group string, start func(name string) member) {
	t.Helper()
	c.createTopic(b, topic, 4)
	batchA := c.produce(b, topic, 4, "a", 100)
	m1 := start("m1")
	waitAll(t, batchA, m1.consumed)
	testenv.Eventually(t, 60*time.Second, func() error {
		if got := sum(c.committed(b, group)[topic]); got != 100 {
			return fmt.Errorf("first member committed %d of 100", got)
		}
		return nil
	})

	m2 := start("m2")
	cl := c.client(b, nil)
	defer cl.Close()
	describeStable(t, kadmClient(cl), group, 2)

	batchB := c.produce(b, topic, 4, "b", 100)
	s := waitAll(t, append(append([]string{}, batchA...), batchB...), m1.consumed, m2.consumed)
	if len(s.dups) > 0 {
		t.Fatalf("%d records consumed twice, e.g. %s", len(s.dups), s.dups[0])
	}
	per := map[string]int{}
	for _, v := range batchB {
		per[s.byValue[v]]++
	}
	if per["0"] == 0 || per["1"] == 0 {
		t.Fatalf("batch b went to one member only: %v", per)
	}
	t.Logf("batch b split between the members: %v", per)
	m1.close()
	m2.close()
	testenv.Eventually(t, 60*time.Second, func() error {
		if got := sum(c.committed(b, group)[topic]); got != 200 {
			return fmt.Errorf("committed %d of 200", got)
		}
		return nil
	})
}

// --- kcat (librdkafka 2.0) ----------------------------------------------------------------

type kcatMember struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	vals []string
	done chan struct{}
}

func startKcat(t *testing.T, addr, group, topic string) *kcatMember {
	t.Helper()
	bin, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat is not installed (Debian package kcat; `make tools`): %v", err)
	}
	cmd := exec.Command(bin, "-b", addr, "-G", group, "-q", "-u", "-f", "%s\n",
		"-X", "auto.offset.reset=earliest", "-X", "auto.commit.interval.ms=100",
		"-X", "session.timeout.ms=10000", "-X", "heartbeat.interval.ms=500",
		"-X", "fetch.wait.max.ms=200", topic)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	k := &kcatMember{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(k.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			k.mu.Lock()
			k.vals = append(k.vals, sc.Text())
			k.mu.Unlock()
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		k.close()
		if t.Failed() {
			t.Logf("kcat stderr:\n%s", stderr.String())
		}
	})
	return k
}

func (k *kcatMember) consumed() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.vals...)
}

// close sends SIGTERM: kcat commits, leaves the group and exits.
func (k *kcatMember) close() {
	select {
	case <-k.done:
		return
	default:
	}
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.done:
	case <-time.After(30 * time.Second):
		_ = k.cmd.Process.Kill()
		<-k.done
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

func TestKcatBalancedConsumers(t *testing.T) {
	c := newCluster(t)
	b := c.startBroker(1, 0)
	rebalanceScenario(t, c, b, "kcat-topic", "kcat-group", func(string) member {
		return startKcat(t, b.addr(), "kcat-group", "kcat-topic")
	})
}

// --- sarama -------------------------------------------------------------------------------

type saramaMember struct {
	group  sarama.ConsumerGroup
	mu     sync.Mutex
	vals   []string
	cancel context.CancelFunc
	done   chan struct{}
}

func (m *saramaMember) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (m *saramaMember) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (m *saramaMember) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		m.mu.Lock()
		m.vals = append(m.vals, string(msg.Value))
		m.mu.Unlock()
		sess.MarkMessage(msg, "")
	}
	return nil
}

func (m *saramaMember) consumed() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.vals...)
}

func (m *saramaMember) close() {
	if m.cancel == nil {
		return
	}
	m.cancel()
	<-m.done
	_ = m.group.Close()
	m.cancel = nil
}

func startSarama(t *testing.T, addr, group, topic, name string) *saramaMember {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.ClientID = name
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	cfg.Consumer.MaxWaitTime = 200 * time.Millisecond
	cg, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &saramaMember{group: cg, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, m); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) && ctx.Err() == nil {
				t.Logf("%s: consume: %v", name, err)
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	go func() {
		for err := range cg.Errors() {
			t.Logf("%s: %v", name, err)
		}
	}()
	t.Cleanup(m.close)
	return m
}

func TestSaramaConsumerGroup(t *testing.T) {
	c := newCluster(t)
	b := c.startBroker(1, 0)
	rebalanceScenario(t, c, b, "sarama-topic", "sarama-group", func(name string) member {
		return startSarama(t, b.addr(), "sarama-group", "sarama-topic", name)
	})
}

// --- kafka-go -----------------------------------------------------------------------------

type kafkaGoMember struct {
	r      *kafka.Reader
	mu     sync.Mutex
	vals   []string
	cancel context.CancelFunc
	done   chan struct{}
}

func (m *kafkaGoMember) consumed() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.vals...)
}

func (m *kafkaGoMember) close() {
	if m.cancel == nil {
		return
	}
	m.cancel()
	<-m.done
	_ = m.r.Close()
	m.cancel = nil
}

func startKafkaGo(t *testing.T, addr, group, topic string) *kafkaGoMember {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{addr}, GroupID: group, Topic: topic,
		StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond,
		HeartbeatInterval: 500 * time.Millisecond, SessionTimeout: 10 * time.Second,
		RebalanceTimeout: 10 * time.Second, JoinGroupBackoff: 200 * time.Millisecond,
		CommitInterval: 0, // commit synchronously after every message
	})
	ctx, cancel := context.WithCancel(context.Background())
	m := &kafkaGoMember{r: r, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			msg, err := r.FetchMessage(ctx)
			if err != nil {
				if ctx.Err() == nil {
					t.Logf("kafka-go fetch: %v", err)
				}
				return
			}
			if err := r.CommitMessages(ctx, msg); err != nil {
				if ctx.Err() == nil {
					t.Logf("kafka-go commit: %v", err)
				}
				continue // not counted: it will be delivered again
			}
			m.mu.Lock()
			m.vals = append(m.vals, string(msg.Value))
			m.mu.Unlock()
		}
	}()
	t.Cleanup(m.close)
	return m
}

func TestKafkaGoReaderGroup(t *testing.T) {
	c := newCluster(t)
	b := c.startBroker(1, 0)
	rebalanceScenario(t, c, b, "kafkago-topic", "kafkago-group", func(string) member {
		return startKafkaGo(t, b.addr(), "kafkago-group", "kafkago-topic")
	})
}
