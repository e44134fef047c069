package backend

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeBroker answers every request but produces (acks=0 in these tests) in order, echoing the client id length as the
// number of keys, so each answer can be matched to its request; it can drop connections.
type fakeBroker struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	delay chan struct{} // when set, answers wait for it
	// held receives a value each time an answer starts waiting for delay: the request was
	// read, so its connection is in conns and dropAll closes it.
	held chan struct{}
}

func startFake(t *testing.T) *fakeBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeBroker{ln: ln, held: make(chan struct{}, 64)}
	t.Cleanup(func() { ln.Close(); f.dropAll() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			go f.serve(c)
		}
	}()
	return f
}

func (f *fakeBroker) serve(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		var size [4]byte
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return
		}
		frame := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(r, frame); err != nil {
			return
		}
		if binary.BigEndian.Uint16(frame) == 0 {
			continue // a produce: the tests send only acks=0 ones, which get no answer
		}
		corr := binary.BigEndian.Uint32(frame[4:])
		idLen := int(binary.BigEndian.Uint16(frame[8:]))
		resp := kmsg.NewPtrApiVersionsResponse()
		for i := 0; i < idLen; i++ {
			resp.ApiKeys = append(resp.ApiKeys, kmsg.NewApiVersionsResponseApiKey())
		}
		body := resp.AppendTo(nil)
		out := binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))
		out = binary.BigEndian.AppendUint32(out, corr)
		f.mu.Lock()
		delay := f.delay
		f.mu.Unlock()
		if delay != nil {
			select {
			case f.held <- struct{}{}:
			default:
			}
			<-delay
		}
		if _, err := c.Write(append(out, body...)); err != nil {
			return
		}
	}
}

func (f *fakeBroker) dropAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

func apiVersions(clientID string) Request {
	return Request{Key: 18, Version: 0, ClientID: &clientID, Body: kmsg.NewPtrApiVersionsRequest().AppendTo(nil)}
}

// Pipelined calls from many goroutines each get their own answer.
func TestConnMatchesAnswersInOrder(t *testing.T) {
	f := startFake(t)
	c, err := Dial(context.Background(), 1, f.ln.Addr().String(), nil, &Stats{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	for i := 1; i <= 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := string(make([]byte, i))
			body, err := c.Send(context.Background(), apiVersions(id))
			if err != nil {
				t.Errorf("call %d: %v", i, err)
				return
			}
			resp := kmsg.NewPtrApiVersionsResponse()
			if err := resp.ReadFrom(body); err != nil || len(resp.ApiKeys) != i {
				t.Errorf("call %d got the answer of call %d (%v)", i, len(resp.ApiKeys), err)
			}
		}()
	}
	wg.Wait()
}

// A connection the broker closes fails its pending calls, stops taking calls, and the pool
// dials a new one for the next.
func TestClosedConnectionIsReplaced(t *testing.T) {
	f := startFake(t)
	stats := &Stats{}
	p := NewPool(Options{Conns: 1, Stats: stats})
	defer p.Close()
	addr := f.ln.Addr().String()
	c, err := p.Shared(context.Background(), 1, addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	f.mu.Lock()
	f.delay = gate
	f.mu.Unlock()
	pending, err := c.Start(apiVersions("x"))
	if err != nil {
		t.Fatal(err)
	}
	// The client's dial returns before the fake's Accept registers the connection; dropping
	// before the request is held could close nothing and leave the call waiting forever.
	<-f.held
	f.dropAll()
	if _, err := pending.Wait(context.Background()); !errors.Is(err, ErrConnClosed) {
		t.Fatalf("pending call on a closed connection: %v, want ErrConnClosed", err)
	}
	close(gate)
	f.mu.Lock()
	f.delay = nil
	f.mu.Unlock()
	for c.Alive() {
		time.Sleep(time.Millisecond)
	}
	c2, err := p.Shared(context.Background(), 1, addr, 0)
	if err != nil || c2 == c {
		t.Fatalf("the pool kept the closed connection (%v)", err)
	}
	if _, err := c2.Send(context.Background(), apiVersions("y")); err != nil {
		t.Fatalf("call on the new connection: %v", err)
	}
	if stats.Conns() != 1 {
		t.Fatalf("%d connections counted open, want 1", stats.Conns())
	}
}

// A call whose deadline passes closes the connection: its answer can no longer be trusted
// to come, and later calls must not queue behind it.
func TestDeadlineClosesConnection(t *testing.T) {
	f := startFake(t)
	gate := make(chan struct{})
	defer close(gate)
	f.mu.Lock()
	f.delay = gate
	f.mu.Unlock()
	c, err := Dial(context.Background(), 1, f.ln.Addr().String(), nil, &Stats{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Send(ctx, apiVersions("slow")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow call: %v", err)
	}
	if c.Alive() {
		t.Fatal("the connection is still taking calls after a missed deadline")
	}
	if _, err := c.Send(context.Background(), apiVersions("next")); !errors.Is(err, ErrConnClosed) && err == nil {
		t.Fatalf("call after the deadline: %v", err)
	}
}

// Requests without an answer (acks=0 produces) do not take a place in the answer queue.
func TestNoResponseRequests(t *testing.T) {
	f := startFake(t)
	c, err := Dial(context.Background(), 1, f.ln.Addr().String(), nil, &Stats{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := c.Start(Request{Key: 0, Version: 7, Body: []byte{}, NoResponse: true})
	if err != nil {
		t.Fatal(err)
	}
	if body, err := p.Wait(context.Background()); body != nil || err != nil {
		t.Fatalf("no-response request: %v %v", body, err)
	}
	if c.Inflight() != 0 {
		t.Fatalf("%d calls in flight after a no-response request", c.Inflight())
	}
	// The next call is answered: the connection did not wait for an answer to the produce.
	if _, err := c.Send(context.Background(), apiVersions("after")); err != nil {
		t.Fatalf("call after an acks=0 produce: %v", err)
	}
}
