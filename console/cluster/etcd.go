package cluster

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kafscale/kafscale/internal/metadata"
)

// KV is the console's whole access to etcd: reads. A *clientv3.Client satisfies it, and
// nothing in this package can write through it.
type KV interface {
	Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error)
}

// state is one consistent read of the keys a view needs, all at one etcd revision.
type state struct {
	rev        int64
	snap       *metadata.Snapshot
	published  bool // a metadata snapshot exists
	members    []metadata.Member
	partitions map[string]map[int32]*metadata.PartitionState // topic → partition
	groups     map[string]*groupDoc
	offsets    map[string][]offsetEntry // group → its committed offsets
}

// What a read includes: every read has the snapshot.
type parts struct{ members, partitions, groups bool }

// read gets the snapshot and the asked-for prefixes at one revision.
func (r *Reader) read(ctx context.Context, want parts) (*state, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	resp, err := r.kv.Get(ctx, r.keys.Metadata())
	if err != nil {
		return nil, fmt.Errorf("etcd unreachable: read %s: %w", r.keys.Metadata(), err)
	}
	st := &state{rev: resp.Header.Revision, snap: &metadata.Snapshot{ControllerID: -1}}
	if len(resp.Kvs) > 0 {
		if err := json.Unmarshal(resp.Kvs[0].Value, st.snap); err != nil {
			return nil, fmt.Errorf("decode the metadata snapshot %s: %w", r.keys.Metadata(), err)
		}
		st.snap.Normalize()
		st.published = true
	}
	get := func(prefix string) ([]*kvPair, error) {
		resp, err := r.kv.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(st.rev))
		if err != nil {
			return nil, fmt.Errorf("etcd unreachable: read %s: %w", prefix, err)
		}
		out := make([]*kvPair, len(resp.Kvs))
		for i, kv := range resp.Kvs {
			out[i] = &kvPair{key: strings.TrimPrefix(string(kv.Key), prefix), value: kv.Value}
		}
		return out, nil
	}
	if want.members {
		kvs, err := get(r.keys.Brokers())
		if err != nil {
			return nil, err
		}
		for _, kv := range kvs {
			var m metadata.Member
			if json.Unmarshal(kv.value, &m) == nil {
				st.members = append(st.members, m)
			}
		}
		sort.Slice(st.members, func(i, j int) bool { return st.members[i].NodeID < st.members[j].NodeID })
	}
	if want.partitions {
		kvs, err := get(r.keys.Partitions())
		if err != nil {
			return nil, err
		}
		st.partitions = map[string]map[int32]*metadata.PartitionState{}
		for _, kv := range kvs {
			i := strings.LastIndexByte(kv.key, '/')
			if i < 0 {
				continue
			}
			p, err := strconv.ParseInt(kv.key[i+1:], 10, 32)
			if err != nil {
				continue
			}
			var ps metadata.PartitionState
			if json.Unmarshal(kv.value, &ps) != nil {
				continue
			}
			topic := kv.key[:i]
			if st.partitions[topic] == nil {
				st.partitions[topic] = map[int32]*metadata.PartitionState{}
			}
			st.partitions[topic][int32(p)] = &ps
		}
	}
	if want.groups {
		kvs, err := get(r.keys.Prefix() + "groups/")
		if err != nil {
			return nil, err
		}
		st.groups = map[string]*groupDoc{}
		for _, kv := range kvs {
			var g groupDoc
			if json.Unmarshal(kv.value, &g) == nil {
				st.groups[kv.key] = &g
			}
		}
		kvs, err = get(r.keys.Prefix() + "offsets/")
		if err != nil {
			return nil, err
		}
		st.offsets = map[string][]offsetEntry{}
		for _, kv := range kvs {
			// <group>/<topic>/<partition>: group ids may hold '/', topic names may not, so
			// the key splits from its end (docs/groups.md).
			i := strings.LastIndexByte(kv.key, '/')
			if i <= 0 {
				continue
			}
			j := strings.LastIndexByte(kv.key[:i], '/')
			if j <= 0 {
				continue
			}
			p, err := strconv.ParseInt(kv.key[i+1:], 10, 32)
			if err != nil {
				continue
			}
			var o struct {
				Offset int64 `json:"offset"`
			}
			if json.Unmarshal(kv.value, &o) != nil {
				continue
			}
			g := kv.key[:j]
			st.offsets[g] = append(st.offsets[g], offsetEntry{topic: kv.key[j+1 : i], partition: int32(p), offset: o.Offset})
		}
	}
	return st, nil
}

type kvPair struct {
	key   string
	value []byte
}

// groupDoc is the document a group's coordinator stores at groups/<group> (docs/groups.md).
type groupDoc struct {
	State        string `json:"state"`
	ProtocolType string `json:"protocolType"`
	Protocol     string `json:"protocol"`
	Generation   int32  `json:"generation"`
	Members      []struct {
		MemberID   string  `json:"memberId"`
		InstanceID *string `json:"instanceId"`
		ClientID   string  `json:"clientId"`
		ClientHost string  `json:"clientHost"`
		Assignment []byte  `json:"assignment"`
	} `json:"members"`
	Coordinator int32 `json:"coordinator"`
	UpdatedMs   int64 `json:"updatedMs"`
}

type offsetEntry struct {
	topic     string
	partition int32
	offset    int64
}

// logState returns a partition's log start, high watermark and size. A partition whose
// state is absent (or left by a deleted topic of the same name) has never had anything
// committed: 0, 0, 0 bytes.
func (st *state) logState(t *metadata.Topic, p int32) (logStart, hwm int64, size *int64) {
	ps := st.partitions[t.Name][p]
	zero := int64(0)
	if ps == nil || ps.TopicID != t.ID {
		return 0, 0, &zero
	}
	var n int64
	for _, c := range ps.Chunks {
		n += c.Len
	}
	for _, a := range ps.Archives {
		if a.Size == 0 {
			return ps.LogStartOffset, ps.HighWatermark, nil
		}
		n += a.Size
	}
	return ps.LogStartOffset, ps.HighWatermark, &n
}

func topicID(id [16]byte) string {
	s := hex.EncodeToString(id[:])
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

// Topics lists the topics of the metadata snapshot with their totals.
func (r *Reader) Topics(ctx context.Context) Topics {
	st, err := r.read(ctx, parts{partitions: true})
	if err != nil {
		return Topics{Error: err.Error()}
	}
	out := Topics{Topics: []TopicSummary{}}
	for i := range st.snap.Topics {
		t := &st.snap.Topics[i]
		s := TopicSummary{Name: t.Name, Partitions: len(t.Partitions), Configs: len(t.Configs)}
		size, sizeKnown := int64(0), true
		for _, p := range t.Partitions {
			ls, hwm, sz := st.logState(t, p.ID)
			s.Records += hwm - ls
			if sz == nil {
				sizeKnown = false
			} else {
				size += *sz
			}
		}
		if sizeKnown {
			s.SizeBytes = &size
		}
		out.Topics = append(out.Topics, s)
	}
	return out
}

// Topic returns one topic with its partitions.
func (r *Reader) Topic(ctx context.Context, name string) Topic {
	out := Topic{Name: name}
	st, err := r.read(ctx, parts{partitions: true})
	if err != nil {
		out.Error = err.Error()
		return out
	}
	t := st.snap.Topic(name)
	if t == nil {
		return out
	}
	out.Found, out.ID, out.Configs = true, topicID(t.ID), map[string]string{}
	for k, v := range t.Configs {
		out.Configs[k] = v
	}
	out.Partitions = []Partition{}
	for _, p := range t.Partitions {
		ls, hwm, sz := st.logState(t, p.ID)
		out.Partitions = append(out.Partitions, Partition{ID: p.ID, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, LogStart: ls, HighWatermark: hwm, SizeBytes: sz})
	}
	return out
}

// Groups lists the consumer groups with their lag.
func (r *Reader) Groups(ctx context.Context) Groups {
	st, err := r.read(ctx, parts{partitions: true, groups: true})
	if err != nil {
		return Groups{Error: err.Error()}
	}
	out := Groups{Groups: []GroupSummary{}}
	for _, name := range st.groupNames() {
		out.Groups = append(out.Groups, st.group(name).GroupSummary)
	}
	return out
}

// Group returns one group with its members and lag per partition.
func (r *Reader) Group(ctx context.Context, name string) Group {
	st, err := r.read(ctx, parts{partitions: true, groups: true})
	if err != nil {
		return Group{GroupSummary: GroupSummary{Name: name}, Error: err.Error()}
	}
	return st.group(name)
}

func (st *state) groupNames() []string {
	seen := map[string]bool{}
	var names []string
	for g := range st.groups {
		seen[g] = true
		names = append(names, g)
	}
	for g := range st.offsets {
		if !seen[g] {
			names = append(names, g)
		}
	}
	sort.Strings(names)
	return names
}

// group builds one group's view: the union of its committed offsets and its members'
// assignments, each with the partition's high watermark.
func (st *state) group(name string) Group {
	out := Group{GroupSummary: GroupSummary{Name: name}}
	doc := st.groups[name]
	offs := st.offsets[name]
	if doc == nil && offs == nil {
		return out
	}
	out.Found = true
	type tp struct {
		topic string
		p     int32
	}
	rows := map[tp]*PartitionOffset{}
	row := func(k tp) *PartitionOffset {
		if rows[k] == nil {
			rows[k] = &PartitionOffset{Topic: k.topic, Partition: k.p}
		}
		return rows[k]
	}
	out.MemberList = []Member{}
	if doc != nil {
		out.State, out.ProtocolType, out.Protocol, out.Generation = doc.State, doc.ProtocolType, doc.Protocol, doc.Generation
		out.Members = len(doc.Members)
		c := doc.Coordinator
		out.Coordinator = &c
		if doc.UpdatedMs > 0 {
			t := time.UnixMilli(doc.UpdatedMs).UTC()
			out.UpdatedAt = &t
		}
		for _, m := range doc.Members {
			mv := Member{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, ClientHost: m.ClientHost}
			if doc.ProtocolType == "consumer" && len(m.Assignment) > 0 {
				var a kmsg.ConsumerMemberAssignment
				if a.ReadFrom(m.Assignment) == nil {
					mv.Assignment = []TopicPartitions{}
					for _, t := range a.Topics {
						mv.Assignment = append(mv.Assignment, TopicPartitions{Topic: t.Topic, Partitions: t.Partitions})
						for _, p := range t.Partitions {
							cid := m.ClientID
							row(tp{t.Topic, p}).Member = &cid
						}
					}
				}
			} else if doc.ProtocolType == "consumer" {
				mv.Assignment = []TopicPartitions{}
			}
			out.MemberList = append(out.MemberList, mv)
		}
	}
	for _, o := range offs {
		c := o.offset
		row(tp{o.topic, o.partition}).Committed = &c
	}
	var total int64
	known := false
	for k, r := range rows {
		if t := st.snap.Topic(k.topic); t != nil && t.Partition(k.p) != nil {
			_, hwm, _ := st.logState(t, k.p)
			r.HighWatermark = &hwm
		}
		if r.Committed != nil && r.HighWatermark != nil {
			lag := max(0, *r.HighWatermark-*r.Committed)
			r.Lag = &lag
			total += lag
			known = true
		} else {
			out.UnknownLag++
		}
		out.Offsets = append(out.Offsets, *r)
	}
	sort.Slice(out.Offsets, func(i, j int) bool {
		a, b := out.Offsets[i], out.Offsets[j]
		return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
	})
	if out.Offsets == nil {
		out.Offsets = []PartitionOffset{}
	}
	out.Partitions = len(out.Offsets)
	if known {
		out.TotalLag = &total
	}
	return out
}
