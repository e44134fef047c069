package groups

import (
	"context"
	"encoding/json"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit answers an OffsetCommit request (v0-v8). Members commit with their
// generation and member id; groupless consumers and admin tools commit with generation -1
// to a group without members; v0 commits (no generation) are not checked against the group.
// The offsets of one request are written to etcd together (in transactions of at most
// maxTxnOps keys), fenced by the group document's revision; an etcd failure answers
// REQUEST_TIMED_OUT, which clients retry.
func (c *Coordinator) OffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	codes := make([][]int16, len(req.Topics))
	for i, t := range req.Topics {
		codes[i] = make([]int16, len(t.Partitions))
	}
	all := func(err *kerr.Error) {
		for i := range codes {
			for j := range codes[i] {
				codes[i][j] = err.Code
			}
		}
	}
	defer func() {
		for i, t := range req.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for j, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, codes[i][j]
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	}()

	if req.Group == "" {
		all(kerr.InvalidGroupID)
		return resp
	}
	generation, memberID := req.Generation, req.MemberID
	g, err := c.lockGroup(ctx, req.Group, true)
	if err != nil {
		all(c.errorFor("OffsetCommit", req.Group, err, kerr.CoordinatorNotAvailable))
		return resp
	}
	defer g.mu.Unlock()
	if generation >= 0 {
		if err := g.checkInstance(req.InstanceID, memberID); err != nil {
			all(err)
			return resp
		}
	}
	switch m := g.members[memberID]; {
	case req.Version == 0:
		// v0 carries no generation or member: Kafka stored these in ZooKeeper without
		// looking at the group, and so does this coordinator (in etcd)
	case generation < 0 && memberID == "" && g.state == Empty:
		// a simple commit: allowed while the group has no members
	case g.state == CompletingRebalance:
		all(kerr.RebalanceInProgress)
		return resp
	case m == nil:
		all(kerr.UnknownMemberID)
		return resp
	case generation != g.generation:
		all(kerr.IllegalGeneration)
		return resp
	default:
		g.scheduleHeartbeat(m)
	}

	snap := c.snapshot()
	now := c.opts.Clock.Now().UnixMilli()
	var ops []op
	var committed [][2]int
	for i, t := range req.Topics {
		topic := snap.Topic(t.Topic)
		for j, p := range t.Partitions {
			doc := OffsetDocument{Offset: p.Offset, LeaderEpoch: -1, CommitMs: now}
			if req.Version >= 6 {
				doc.LeaderEpoch = p.LeaderEpoch
			}
			if p.Metadata != nil {
				doc.Metadata = *p.Metadata
			}
			switch {
			case topic == nil || topic.Partition(p.Partition) == nil:
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
			case len(doc.Metadata) > c.opts.MaxMetadataBytes:
				codes[i][j] = kerr.OffsetMetadataTooLarge.Code
			default:
				data, _ := json.Marshal(doc)
				ops = append(ops, putOp(c.keys.Offset(g.id, t.Topic, p.Partition), string(data)))
				committed = append(committed, [2]int{i, j})
			}
		}
	}
	if len(ops) == 0 {
		return resp
	}
	if err := c.writeOps(ctx, g, g.rev == 0, ops); err != nil {
		e := c.errorFor("OffsetCommit", g.id, err, kerr.RequestTimedOut)
		for _, ij := range committed {
			codes[ij[0]][ij[1]] = e.Code
		}
		if err == errFenced {
			c.drop(g)
		}
	}
	return resp
}

// OffsetFetch answers an OffsetFetch request: one group in v0-v7 (null topics in v2+ mean
// every committed partition), several groups in v8. Offsets are read from etcd, so they are
// exactly what was acknowledged, whichever broker committed them. A partition without a
// committed offset answers -1.
func (c *Coordinator) OffsetFetch(ctx context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			gr := kmsg.NewOffsetFetchResponseGroup()
			gr.Group = rg.Group
			var topics []fetchTopic
			if rg.Topics != nil {
				topics = []fetchTopic{}
				for _, t := range rg.Topics {
					topics = append(topics, fetchTopic{t.Topic, t.Partitions})
				}
			}
			res, errc := c.fetchOffsets(ctx, rg.Group, topics)
			gr.ErrorCode = errc
			for _, t := range res {
				rt := kmsg.NewOffsetFetchResponseGroupTopic()
				rt.Topic = t.topic
				for _, p := range t.partitions {
					rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p.partition, p.doc.Offset, p.doc.LeaderEpoch, kmsg.StringPtr(p.doc.Metadata)
					rt.Partitions = append(rt.Partitions, rp)
				}
				gr.Topics = append(gr.Topics, rt)
			}
			resp.Groups = append(resp.Groups, gr)
		}
		return resp
	}

	var topics []fetchTopic
	if req.Topics != nil || req.Version < 2 {
		topics = []fetchTopic{}
		for _, t := range req.Topics {
			topics = append(topics, fetchTopic{t.Topic, t.Partitions})
		}
	}
	res, errc := c.fetchOffsets(ctx, req.Group, topics)
	if req.Version >= 2 {
		resp.ErrorCode = errc
	}
	if errc != 0 && req.Version < 2 { // v0-v1 carry errors per partition only
		res = nil
		for _, t := range topics {
			ft := fetchedTopic{topic: t.topic}
			for _, p := range t.partitions {
				ft.partitions = append(ft.partitions, fetchedPartition{partition: p, doc: OffsetDocument{Offset: -1, LeaderEpoch: -1}, errc: errc})
			}
			res = append(res, ft)
		}
	}
	for _, t := range res {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.topic
		for _, p := range t.partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p.partition, p.doc.Offset, p.doc.LeaderEpoch, kmsg.StringPtr(p.doc.Metadata), p.errc
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

type fetchTopic struct {
	topic      string
	partitions []int32
}

type fetchedTopic struct {
	topic      string
	partitions []fetchedPartition
}

type fetchedPartition struct {
	partition int32
	doc       OffsetDocument
	errc      int16
}

// fetchOffsets reads a group's committed offsets for the topics (nil: all of them).
func (c *Coordinator) fetchOffsets(ctx context.Context, group string, topics []fetchTopic) ([]fetchedTopic, int16) {
	if group == "" {
		return nil, kerr.InvalidGroupID.Code
	}
	if !c.isCoordinator(group) {
		return nil, kerr.NotCoordinator.Code
	}
	stored, err := c.readOffsets(ctx, group)
	if err != nil {
		return nil, c.errorFor("OffsetFetch", group, err, kerr.CoordinatorNotAvailable).Code
	}
	if topics == nil {
		byTopic := map[string][]int32{}
		var names []string
		for tp := range stored {
			if byTopic[tp.topic] == nil {
				names = append(names, tp.topic)
			}
			byTopic[tp.topic] = append(byTopic[tp.topic], tp.partition)
		}
		sortStrings(names)
		for _, n := range names {
			ps := byTopic[n]
			sortInt32s(ps)
			topics = append(topics, fetchTopic{n, ps})
		}
	}
	var out []fetchedTopic
	for _, t := range topics {
		ft := fetchedTopic{topic: t.topic}
		for _, p := range t.partitions {
			doc, ok := stored[topicPartition{t.topic, p}]
			if !ok {
				doc = OffsetDocument{Offset: -1, LeaderEpoch: -1}
			}
			ft.partitions = append(ft.partitions, fetchedPartition{partition: p, doc: doc})
		}
		out = append(out, ft)
	}
	return out, 0
}

// OffsetDelete answers an OffsetDelete request (v0): the offsets of an empty group, or of
// topics a consumer group is not subscribed to (GROUP_SUBSCRIBED_TO_TOPIC otherwise;
// NON_EMPTY_GROUP for a group with members that is not a consumer group or whose members'
// subscriptions do not parse).
func (c *Coordinator) OffsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	g, err := c.lockGroup(ctx, req.Group, false)
	if err != nil {
		resp.ErrorCode = c.errorFor("OffsetDelete", req.Group, err, kerr.CoordinatorNotAvailable).Code
		return resp
	}
	if g == nil {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp
	}
	defer g.mu.Unlock()
	var subscribed map[string]bool
	if g.state != Empty {
		var ok bool
		if g.protocolType == "consumer" {
			subscribed, ok = g.subscribedTopics()
		}
		if !ok { // not a consumer group, or its subscription is unknown
			resp.ErrorCode = kerr.NonEmptyGroup.Code
			return resp
		}
	}
	snap := c.snapshot()
	var ops []op
	var deleting []*kmsg.OffsetDeleteResponseTopicPartition
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		topic := snap.Topic(t.Topic)
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			switch {
			case topic == nil || topic.Partition(p.Partition) == nil:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case subscribed[t.Topic]:
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				ops = append(ops, deleteOp(c.keys.Offset(g.id, t.Topic, p.Partition)))
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			if resp.Topics[i].Partitions[j].ErrorCode == 0 {
				deleting = append(deleting, &resp.Topics[i].Partitions[j])
			}
		}
	}
	if len(ops) == 0 {
		return resp
	}
	if err := c.writeOps(ctx, g, false, ops); err != nil {
		if err == errFenced {
			c.drop(g)
			resp.ErrorCode = kerr.NotCoordinator.Code
			return resp
		}
		e := c.errorFor("OffsetDelete", g.id, err, kerr.RequestTimedOut)
		for _, rp := range deleting {
			rp.ErrorCode = e.Code
		}
	}
	return resp
}

// subscribedTopics are the topics the members' consumer-protocol metadata (for the group's
// protocol, once chosen) subscribes to. ok is false when a member's metadata does not parse:
// the group's subscription is then unknown.
func (g *group) subscribedTopics() (topics map[string]bool, ok bool) {
	out := map[string]bool{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if g.protocol != "" && p.Name != g.protocol {
				continue
			}
			var meta kmsg.ConsumerMemberMetadata
			if err := meta.ReadFrom(p.Metadata); err != nil {
				return nil, false
			}
			for _, t := range meta.Topics {
				out[t] = true
			}
		}
	}
	return out, true
}
