// Package leader elects one operator replica. With etcd endpoints for the lock, through an
// etcd election: replicas campaign on KAFSCALE_OPERATOR_LEADER_KEY with a session of a short
// TTL, and only the winner runs the reconcilers; distinct keys let several operators share
// one etcd. Without them, through a Kubernetes Lease named after the key (lease.go).
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var leaderGauge = prometheus.NewGauge(prometheus.GaugeOpts{
	Name: "kafscale_operator_leader",
	Help: "1 on the replica holding the operator leader lock, 0 on the others.",
})

func init() { ctrlmetrics.Registry.MustRegister(leaderGauge) }

// Collector is kafscale_operator_leader, as registered (the dashboard test reads its name).
func Collector() prometheus.Collector { return leaderGauge }

// ErrLost is returned by Start when the etcd session ends while leading; the process must
// stop reconciling at once (the manager exits, Kubernetes restarts the pod).
var ErrLost = errors.New("operator leadership lost")

// Elector campaigns for the leader key. It is a manager.Runnable that does not itself need
// controller-runtime's leader election.
type Elector struct {
	Client *clientv3.Client
	Key    string
	ID     string
	TTL    time.Duration
	Log    *slog.Logger

	once    sync.Once
	elected chan struct{}
}

func (e *Elector) init() {
	e.once.Do(func() {
		e.elected = make(chan struct{})
		if e.Log == nil {
			e.Log = slog.Default()
		}
	})
}

// Elected is closed once this replica leads.
func (e *Elector) Elected() <-chan struct{} {
	e.init()
	return e.elected
}

// NeedLeaderElection is false: the elector is what elects.
func (e *Elector) NeedLeaderElection() bool { return false }

// Start campaigns until elected, then holds the lock until ctx ends (nil, resigning so a
// successor takes over at once) or the session is lost (ErrLost).
func (e *Elector) Start(ctx context.Context) error {
	e.init()
	leaderGauge.Set(0)
	ttl := max(int(e.TTL/time.Second), 1)
	for {
		sess, err := concurrency.NewSession(e.Client, concurrency.WithTTL(ttl), concurrency.WithContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			e.Log.Warn("operator leader election: no etcd session, retrying", "key", e.Key, "err", err)
			if !sleep(ctx, time.Second) {
				return nil
			}
			continue
		}
		election := concurrency.NewElection(sess, e.Key)
		// Campaign returns when elected, when ctx ends, or when the session dies.
		cctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-sess.Done():
				cancel()
			case <-cctx.Done():
			}
		}()
		err = election.Campaign(cctx, e.ID)
		cancel()
		if err != nil || ctx.Err() != nil {
			_ = sess.Close()
			if ctx.Err() != nil {
				return nil
			}
			e.Log.Warn("operator leader election: campaign ended, retrying", "key", e.Key, "err", err)
			continue
		}
		select {
		case <-sess.Done():
			// The session died between winning and now; campaign again.
			continue
		default:
		}
		e.Log.Info("elected operator leader", "key", e.Key, "id", e.ID)
		leaderGauge.Set(1)
		close(e.elected)
		err = e.hold(ctx, sess, time.Duration(ttl)*time.Second)
		leaderGauge.Set(0)
		if err == nil {
			rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = election.Resign(rctx)
			rcancel()
			_ = sess.Close()
		}
		return err
	}
}

// hold returns nil when ctx ends, or ErrLost once the lease may be gone. etcd expires the
// lease TTL after the last keep-alive it received; the session notices only after its own
// deadline, by which time a successor may already lead. So the leader steps down when no
// keep-alive was answered for 3/4 of the TTL, before the server can expire the lease. (The
// client sends keep-alives every TTL/3 on a 500 ms tick, so answers normally come at least
// every TTL/3+500 ms; half the TTL proved too tight on a loaded machine.)
func (e *Elector) hold(ctx context.Context, sess *concurrency.Session, ttl time.Duration) error {
	kctx, cancel := context.WithCancel(ctx)
	defer cancel()
	acks, err := e.Client.KeepAlive(kctx, sess.Lease())
	if err != nil {
		return fmt.Errorf("%w (key %s): keep-alive: %v", ErrLost, e.Key, err)
	}
	last := time.Now()
	tick := time.NewTicker(ttl / 20)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sess.Done():
			return fmt.Errorf("%w (key %s)", ErrLost, e.Key)
		case _, ok := <-acks:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("%w (key %s): keep-alive ended", ErrLost, e.Key)
			}
			last = time.Now()
		case now := <-tick.C:
			if now.Sub(last) > ttl*3/4 {
				return fmt.Errorf("%w (key %s): no keep-alive answered for %v", ErrLost, e.Key, now.Sub(last).Round(time.Millisecond))
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// Gate returns a runnable that starts r only once this replica leads.
func (e *Elector) Gate(r manager.Runnable) manager.Runnable {
	return gated{e: e, r: r}
}

type gated struct {
	e *Elector
	r manager.Runnable
}

func (g gated) NeedLeaderElection() bool { return false }

func (g gated) Start(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-g.e.Elected():
		return g.r.Start(ctx)
	}
}
