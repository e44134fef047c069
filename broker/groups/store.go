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
	kvs, err := c.kv.get(ctx, c.keys.Group(id), false, false)
	if err != nil {
		return nil, &etcdError{"load group " + id, err}
	}
	if len(kvs) == 0 {
		return nil, nil
	}
	var doc GroupDocument
	if err := json.Unmarshal([]byte(kvs[0].value), &doc); err != nil {
		return nil, fmt.Errorf("decode group %s: %w", id, err)
	}
	g := c.newGroup(id)
	g.rev = kvs[0].modRev
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

// storeGroup writes the group's document, fenced. errFenced when another broker wrote it.
func (c *Coordinator) storeGroup(ctx context.Context, g *group) error {
	data, err := json.Marshal(g.document())
	if err != nil {
		return err
	}
	ok, rev, err := c.kv.txn(ctx, c.keys.Group(g.id), g.rev, []op{putOp(c.keys.Group(g.id), string(data))})
	if err != nil {
		return &etcdError{"store group " + g.id, err}
	}
	if !ok {
		return errFenced
	}
	g.rev = rev
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
	kvs, err := c.kv.get(ctx, c.offsetsPrefix(group), true, false)
	if err != nil {
		return nil, &etcdError{"read offsets of " + group, err}
	}
	out := map[topicPartition]OffsetDocument{}
	for _, kv := range kvs {
		gid, topic, p, ok := c.offsetKey(kv.key)
		if !ok || gid != group {
			continue
		}
		var doc OffsetDocument
		if err := json.Unmarshal([]byte(kv.value), &doc); err != nil {
			c.log.Warn("undecodable committed offset", "key", kv.key, "err", err)
			continue
		}
		out[topicPartition{topic, p}] = doc
	}
	return out, nil
}

// writeOps applies puts and deletes to etcd in fenced transactions of at most maxTxnOps
// operations. The group's document comes first when writeDoc (a group never stored yet).
func (c *Coordinator) writeOps(ctx context.Context, g *group, writeDoc bool, ops []op) error {
	ctx, cancel := c.etcdCtx(ctx)
	defer cancel()
	if writeDoc {
		data, err := json.Marshal(g.document())
		if err != nil {
			return err
		}
		ops = append([]op{putOp(c.keys.Group(g.id), string(data))}, ops...)
	}
	for len(ops) > 0 {
		n := min(len(ops), maxTxnOps)
		ok, rev, err := c.kv.txn(ctx, c.keys.Group(g.id), g.rev, ops[:n])
		if err != nil {
			return &etcdError{"write group " + g.id, err}
		}
		if !ok {
			return errFenced
		}
		if writeDoc {
			g.rev = rev
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
	kvs, err := c.kv.get(ctx, c.offsetsPrefix(g.id), true, true)
	if err != nil {
		return &etcdError{"list offsets of " + g.id, err}
	}
	var ops []op
	for _, kv := range kvs {
		if gid, _, _, ok := c.offsetKey(kv.key); ok && gid == g.id {
			ops = append(ops, deleteOp(kv.key))
		}
	}
	ops = append(ops, deleteOp(c.keys.Group(g.id)))
	return c.writeOps(ctx, g, false, ops)
}

// listStoredGroups returns every stored group document by group id.
func (c *Coordinator) listStoredGroups(ctx context.Context) (map[string]GroupDocument, error) {
	ctx, cancel := c.etcdCtx(ctx)
	defer cancel()
	prefix := c.keys.Prefix() + "groups/"
	kvs, err := c.kv.get(ctx, prefix, true, false)
	if err != nil {
		return nil, &etcdError{"list groups", err}
	}
	out := map[string]GroupDocument{}
	for _, kv := range kvs {
		var doc GroupDocument
		if err := json.Unmarshal([]byte(kv.value), &doc); err != nil {
			c.log.Warn("undecodable group document", "key", kv.key, "err", err)
			continue
		}
		out[strings.TrimPrefix(kv.key, prefix)] = doc
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
