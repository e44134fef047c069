package groups

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// GroupDocument is the JSON stored at groups/<group>: the group as of its last completed
// rebalance (written when the leader's assignment arrives in SyncGroup, when the group
// becomes empty, and with the first offset commit of a group that had none).
type GroupDocument struct {
	// State is "Stable" (members with assignments) or "Empty".
	State        string           `json:"state"`
	ProtocolType string           `json:"protocolType,omitempty"`
	Protocol     string           `json:"protocol,omitempty"`
	Generation   int32            `json:"generation"`
	Leader       string           `json:"leader,omitempty"`
	Members      []MemberDocument `json:"members,omitempty"`
	// Coordinator is the NodeID of the broker that wrote the document.
	Coordinator int32 `json:"coordinator"`
	// UpdatedMs is when it was written, in Unix milliseconds.
	UpdatedMs int64 `json:"updatedMs"`
}

// MemberDocument is one member of a stored group.
type MemberDocument struct {
	MemberID           string     `json:"memberId"`
	InstanceID         *string    `json:"instanceId,omitempty"`
	ClientID           string     `json:"clientId"`
	ClientHost         string     `json:"clientHost"`
	SessionTimeoutMs   int32      `json:"sessionTimeoutMs"`
	RebalanceTimeoutMs int32      `json:"rebalanceTimeoutMs"`
	Protocols          []protocol `json:"protocols"`
	Assignment         []byte     `json:"assignment,omitempty"`
}

// OffsetDocument is the JSON stored at offsets/<group>/<topic>/<p>: one committed offset.
type OffsetDocument struct {
	Offset      int64  `json:"offset"`
	LeaderEpoch int32  `json:"leaderEpoch"`
	Metadata    string `json:"metadata,omitempty"`
	// CommitMs is when the coordinator stored it, in Unix milliseconds.
	CommitMs int64 `json:"commitMs"`
}

// etcdError wraps an etcd failure so callers can tell it from the protocol errors.
type etcdError struct {
	op  string
	err error
}

func (e *etcdError) Error() string { return fmt.Sprintf("%s: etcd: %v", e.op, e.err) }
func (e *etcdError) Unwrap() error { return e.err }

// maxTxnOps stays below etcd's default --max-txn-ops (128).
const maxTxnOps = 100

// document renders the group's persistent state.
func (g *group) document() GroupDocument {
	doc := GroupDocument{
		State:        "Empty",
		ProtocolType: g.protocolType,
		Protocol:     g.protocol,
		Generation:   g.generation,
		Leader:       g.leader,
		Coordinator:  g.c.opts.NodeID,
		UpdatedMs:    g.c.opts.Clock.Now().UnixMilli(),
	}
	if len(g.members) > 0 {
		doc.State = "Stable"
	}
	for _, m := range g.sortedMembers() {
		doc.Members = append(doc.Members, MemberDocument{
			MemberID:           m.id,
			InstanceID:         m.instanceID,
			ClientID:           m.clientID,
			ClientHost:         m.clientHost,
			SessionTimeoutMs:   int32(m.sessionTimeout / time.Millisecond),
			RebalanceTimeoutMs: int32(m.rebalanceTimeout / time.Millisecond),
			Protocols:          m.protocols,
			Assignment:         m.assignment,
		})
	}
	return doc
}

// loadGroup reads groups/<id>; nil when it does not exist.
func (c *Coordinator) loadGroup(ctx context.Context, id string) (*group, error) {
	ctx, cancel := c.etcdCtx(ctx)
	defer cancel()
	resp, err := c.cli.Get(ctx, c.keys.Group(id))
	if err != nil {
		return nil, &etcdError{"load group " + id, err}
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	var doc GroupDocument
	if err := json.Unmarshal(resp.Kvs[0].Value, &doc); err != nil {
		return nil, fmt.Errorf("decode group %s: %w", id, err)
	}
	g := c.newGroup(id)
	g.rev = resp.Kvs[0].ModRevision
	g.protocolType, g.protocol, g.generation, g.leader = doc.ProtocolType, doc.Protocol, doc.Generation, doc.Leader
	for i, md := range doc.Members {
		g.members[md.MemberID] = &member{
			id:               md.MemberID,
			instanceID:       md.InstanceID,
			clientID:         md.ClientID,
			clientHost:       md.ClientHost,
			sessionTimeout:   time.Duration(md.SessionTimeoutMs) * time.Millisecond,
			rebalanceTimeout: time.Duration(md.RebalanceTimeoutMs) * time.Millisecond,
			protocols:        md.Protocols,
			assignment:       md.Assignment,
			seq:              int64(i),
		}
	}
	g.nextSeq = int64(len(doc.Members))
	if len(g.members) > 0 {
		g.state = Stable
	} else {
		g.persistedEmpty = true
	}
	c.log.Debug("group loaded", "group", id, "state", g.state.String(), "generation", g.generation, "members", len(g.members))
	return g, nil
}

// fence is the comparison every write of a group carries: its document is still the one
// this broker last read or wrote.
func (c *Coordinator) fence(g *group) clientv3.Cmp {
	return clientv3.Compare(clientv3.ModRevision(c.keys.Group(g.id)), "=", g.rev)
}

// storeGroup writes the group's document, fenced. errFenced when another broker wrote it.
func (c *Coordinator) storeGroup(ctx context.Context, g *group) error {
	data, err := json.Marshal(g.document())
	if err != nil {
		return err
	}
	resp, err := c.cli.Txn(ctx).If(c.fence(g)).Then(clientv3.OpPut(c.keys.Group(g.id), string(data))).Commit()
	if err != nil {
		return &etcdError{"store group " + g.id, err}
	}
	if !resp.Succeeded {
		return errFenced
	}
	g.rev = resp.Header.Revision
	g.persistedEmpty = len(g.members) == 0
	return nil
}

// offsetKey parses offsets/<group>/<topic>/<p> (topic names never hold '/', group ids may).
func (c *Coordinator) offsetKey(key string) (group, topic string, partition int32, ok bool) {
	rest, found := strings.CutPrefix(key, c.keys.Prefix()+"offsets/")
	if !found {
		return "", "", 0, false
	}
	pi := strings.LastIndexByte(rest, '/')
	if pi < 0 {
		return "", "", 0, false
	}
	p, err := strconv.ParseInt(rest[pi+1:], 10, 32)
	if err != nil {
		return "", "", 0, false
	}
	ti := strings.LastIndexByte(rest[:pi], '/')
	if ti < 0 {
		return "", "", 0, false
	}
	return rest[:ti], rest[ti+1 : pi], int32(p), true
}

// offsetsPrefix is the prefix of a group's offset keys (it also covers groups whose id
// extends this one with '/', which offsetKey tells apart).
func (c *Coordinator) offsetsPrefix(group string) string {
	return c.keys.Prefix() + "offsets/" + group + "/"
}

type topicPartition struct {
	topic     string
	partition int32
}

// readOffsets returns the committed offsets of a group.
func (c *Coordinator) readOffsets(ctx context.Context, group string) (map[topicPartition]OffsetDocument, error) {
	ctx, cancel := c.etcdCtx(ctx)
	defer cancel()
	resp, err := c.cli.Get(ctx, c.offsetsPrefix(group), clientv3.WithPrefix())
	if err != nil {
		return nil, &etcdError{"read offsets of " + group, err}
	}
	out := map[topicPartition]OffsetDocument{}
	for _, kv := range resp.Kvs {
		gid, topic, p, ok := c.offsetKey(string(kv.Key))
		if !ok || gid != group {
			continue
		}
		var doc OffsetDocument
		if err := json.Unmarshal(kv.Value, &doc); err != nil {
			c.log.Warn("undecodable committed offset", "key", string(kv.Key), "err", err)
			continue
		}
		out[topicPartition{topic, p}] = doc
	}
	return out, nil
}

// writeOps applies puts and deletes to etcd in fenced transactions of at most maxTxnOps
// operations. The group's document comes first when writeDoc (a group never stored yet).
func (c *Coordinator) writeOps(ctx context.Context, g *group, writeDoc bool, ops []clientv3.Op) error {
	ctx, cancel := c.etcdCtx(ctx)
	defer cancel()
	if writeDoc {
		data, err := json.Marshal(g.document())
		if err != nil {
			return err
		}
		ops = append([]clientv3.Op{clientv3.OpPut(c.keys.Group(g.id), string(data))}, ops...)
	}
	for len(ops) > 0 {
		n := min(len(ops), maxTxnOps)
		resp, err := c.cli.Txn(ctx).If(c.fence(g)).Then(ops[:n]...).Commit()
		if err != nil {
			return &etcdError{"write group " + g.id, err}
		}
		if !resp.Succeeded {
			return errFenced
		}
		if writeDoc {
			g.rev = resp.Header.Revision
			g.persistedEmpty = len(g.members) == 0
			writeDoc = false
		}
		ops = ops[n:]
	}
	return nil
}

// deleteGroup removes a group's offsets and then its document, fenced.
func (c *Coordinator) deleteGroup(ctx context.Context, g *group) error {
	ctx, cancel := c.etcdCtx(ctx)
	defer cancel()
	resp, err := c.cli.Get(ctx, c.offsetsPrefix(g.id), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return &etcdError{"list offsets of " + g.id, err}
	}
	var ops []clientv3.Op
	for _, kv := range resp.Kvs {
		if gid, _, _, ok := c.offsetKey(string(kv.Key)); ok && gid == g.id {
			ops = append(ops, clientv3.OpDelete(string(kv.Key)))
		}
	}
	ops = append(ops, clientv3.OpDelete(c.keys.Group(g.id)))
	return c.writeOps(ctx, g, false, ops)
}

// listStoredGroups returns every stored group document by group id.
func (c *Coordinator) listStoredGroups(ctx context.Context) (map[string]GroupDocument, error) {
	ctx, cancel := c.etcdCtx(ctx)
	defer cancel()
	prefix := c.keys.Prefix() + "groups/"
	resp, err := c.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, &etcdError{"list groups", err}
	}
	out := map[string]GroupDocument{}
	for _, kv := range resp.Kvs {
		var doc GroupDocument
		if err := json.Unmarshal(kv.Value, &doc); err != nil {
			c.log.Warn("undecodable group document", "key", string(kv.Key), "err", err)
			continue
		}
		out[strings.TrimPrefix(string(kv.Key), prefix)] = doc
	}
	return out, nil
}

// errorFor maps a coordinator failure to the Kafka error a client retries on: etcd failures
// and fencing as the coordinator being unavailable or elsewhere. storageErr is what an etcd
// failure becomes for this API (COORDINATOR_NOT_AVAILABLE for membership, REQUEST_TIMED_OUT
// for offset commits).
func (c *Coordinator) errorFor(op, group string, err error, storageErr *kerr.Error) *kerr.Error {
	var ke *kerr.Error
	var ee *etcdError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errNotCoordinator), errors.Is(err, errFenced):
		return kerr.NotCoordinator
	case errors.As(err, &ke):
		return ke
	case errors.As(err, &ee):
		c.log.Warn("group request failed on etcd", "op", op, "group", group, "err", err)
		return storageErr
	default:
		c.log.Error("group request failed", "op", op, "group", group, "err", err)
		return kerr.UnknownServerError
	}
}
