package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/kafscale/kafscale/broker/control/controlpb"
	"github.com/kafscale/kafscale/broker/partition"
	"github.com/kafscale/kafscale/internal/metadata"
)

// drainer takes the broker out of service once: stop taking produce, flush and commit,
// release leadership (deregister, resign the controller election). The control service's
// Drain RPC and the SIGTERM shutdown both go through it, so a broker drained by the operator
// shuts down without draining twice, and a drained broker never takes its partitions back.
type drainer struct {
	nodeID int32
	pod    string
	log    *slog.Logger
	mgr    *partition.Manager
	meta   *metadata.Store
	ready  *atomic.Bool
	// reg is the broker's registration; stopGroups and stopController are idempotent.
	reg            *metadata.Registration
	stopGroups     func()
	stopController func()

	state  atomic.Int32 // a controlpb.StatusResponse_State
	mu     sync.Mutex   // one drain at a time
	result *controlpb.DrainResponse
}

// Drain is the control service's Drain: it also waits (bounded by ctx) until the controller
// has given this broker's partitions to other brokers, so the caller knows they moved.
func (d *drainer) Drain(ctx context.Context, reason string) (*controlpb.DrainResponse, error) {
	return d.drain(ctx, reason, true)
}

// Status is the control service's Status.
func (d *drainer) Status() *controlpb.StatusResponse {
	st := d.mgr.Stats()
	return &controlpb.StatusResponse{
		NodeId:         d.nodeID,
		State:          controlpb.StatusResponse_State(d.state.Load()),
		LeadPartitions: int32(st.LeadPartitions),
		BufferedBytes:  st.BufferedBytes,
		Pod:            d.pod,
	}
}

func (d *drainer) drain(ctx context.Context, reason string, waitMoved bool) (*controlpb.DrainResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.result != nil {
		again := proto.Clone(d.result).(*controlpb.DrainResponse)
		again.AlreadyDrained = true
		d.log.Info("drain requested again; already drained", "reason", reason)
		return again, nil
	}
	start := time.Now()
	d.state.Store(int32(controlpb.StatusResponse_DRAINING))
	d.log.Info("draining: refusing produce, flushing, releasing leadership", "reason", reason)
	released := d.leading()
	buffered := d.mgr.Stats().BufferedBytes
	d.ready.Store(false)
	// Waiting group requests are answered NOT_COORDINATOR, and later ones refused: group
	// members move to the next coordinator.
	d.stopGroups()
	// From here appends fail with NOT_LEADER_FOR_PARTITION (the manager is draining and never
	// leads again); everything already buffered is flushed and committed.
	if err := d.mgr.Drain(ctx); err != nil {
		return nil, fmt.Errorf("flush and commit buffered produces: %w", err)
	}
	// Deregistering deletes brokers/<id>: the controller (on whichever broker holds the
	// election) moves this broker's partitions to the live brokers at a higher leader epoch.
	if err := d.reg.Close(ctx); err != nil {
		d.log.Warn("deregister failed; the registration lease expires on its own within KAFSCALE_BROKER_LEASE_TTL_SEC", "err", err)
	}
	d.stopController()
	if waitMoved {
		d.waitMoved(ctx)
	}
	d.result = &controlpb.DrainResponse{
		NodeId:       d.nodeID,
		Released:     released,
		FlushedBytes: buffered,
		DurationMs:   time.Since(start).Milliseconds(),
	}
	d.state.Store(int32(controlpb.StatusResponse_DRAINED))
	d.log.Info("drained", "released_partitions", len(released), "flushed_bytes", buffered, "took", time.Since(start).Round(time.Millisecond))
	return proto.Clone(d.result).(*controlpb.DrainResponse), nil
}

// leading lists the partitions the metadata says this broker leads.
func (d *drainer) leading() []*controlpb.PartitionRef {
	var out []*controlpb.PartitionRef
	for _, t := range d.meta.Snapshot().Topics {
		for _, p := range t.Partitions {
			if p.Leader == d.nodeID {
				out = append(out, &controlpb.PartitionRef{Topic: t.Name, Partition: p.ID, LeaderEpoch: p.LeaderEpoch})
			}
		}
	}
	return out
}

// waitMoved waits until the snapshot names no partition led by this broker, no other broker
// is live to take them, or ctx ends (then the controller finishes the move on its own).
func (d *drainer) waitMoved(ctx context.Context) {
	for len(d.leading()) > 0 {
		if live, err := d.meta.LiveBrokers(ctx); err == nil && len(live) == 0 {
			d.log.Warn("no other live broker to take this broker's partitions; they stay unled until one registers")
			return
		}
		select {
		case <-ctx.Done():
			d.log.Warn("partitions not yet reassigned when the drain's deadline came; the controller moves them on its own")
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// publishedAddr is the address published in the registration for the control or metrics
// listener: the listener's own host when it is bound to one, else the advertised host.
func publishedAddr(ln net.Listener, advertisedHost string) string {
	a := ln.Addr().(*net.TCPAddr)
	host := advertisedHost
	if !a.IP.IsUnspecified() {
		host = a.IP.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(a.Port))
}
