package main

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kafscale/kafscale/internal/flowresult"
	"github.com/twmb/franz-go/pkg/kfake"
)

// result decodes the RESULT line of a flow client's output.
func result(t *testing.T, out string, v any) {
	t.Helper()
	if err := flowresult.Find(out, v); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
}

// Two producers and the consumer run until their stop files say stop; the consumer then
// reads exactly what the producers report acknowledged, with its group's offsets at the end.
func TestFlowClientsAccountForEveryRecord(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "flow"))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	addr := kc.ListenAddrs()[0]
	dir := t.TempDir()
	stopP, stopC := filepath.Join(dir, "producers"), filepath.Join(dir, "consumers")
	var wg sync.WaitGroup
	outs := make([]bytes.Buffer, 3)
	codes := make([]int, 3)
	errs := make([]bytes.Buffer, 3)
	for i, id := range []string{"p0", "p1"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = run([]string{"produce-flow", "-bootstrap", addr, "-topic", "flow", "-id", id, "-partitions", "3", "-rate", "200", "-stop-file", stopP}, &outs[i], &errs[i])
		}()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		codes[2] = run([]string{"consume-flow", "-bootstrap", addr, "-topic", "flow", "-group", "g", "-stop-file", stopC}, &outs[2], &errs[2])
	}()
	time.Sleep(2 * time.Second)
	if err := os.WriteFile(stopP, []byte("stop\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := os.WriteFile(stopC, []byte("stop\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	<-done
	for i := range codes {
		if codes[i] != 0 {
			t.Fatalf("client %d exit %d: %s %s", i, codes[i], errs[i].String(), outs[i].String())
		}
	}
	var c flowresult.Consumer
	result(t, outs[2].String(), &c)
	if len(c.Violations) != 0 {
		t.Errorf("violations: %v", c.Violations)
	}
	total := 0
	for i, id := range []string{"p0", "p1"} {
		var p flowresult.Producer
		result(t, outs[i].String(), &p)
		if len(p.Failed) != 0 || len(p.Disorder) != 0 || p.Sent == 0 {
			t.Errorf("producer %s: sent %d failed %v disorder %v", id, p.Sent, p.Failed, p.Disorder)
		}
		for part := int32(0); part < 3; part++ {
			if got, want := c.Read[part][id], p.Acked[part]; len(want) != 1 || len(got) != 1 || got[0] != want[0] {
				t.Errorf("partition %d producer %s: read %v, acknowledged %v", part, id, got, want)
			}
			for _, r := range p.Acked[part] {
				total += r[1] - r[0] + 1
			}
		}
	}
	if c.Records < total {
		t.Errorf("consumer read %d records, producers had %d acknowledged", c.Records, total)
	}
	for part := int32(0); part < 3; part++ {
		if c.Committed[part] != c.End[part] || c.End[part] == 0 {
			t.Errorf("partition %d: committed %d, end %d", part, c.Committed[part], c.End[part])
		}
	}
}
