package groups

import (
	"context"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups answers a DescribeGroups request (v0-v5). A group this broker coordinates
// that does not exist is reported in state Dead without error, as Kafka does before v6.
// Member metadata and assignments are included in the Stable state.
func (c *Coordinator) DescribeGroups(ctx context.Context, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group = id
		rg.State = Dead.String()
		g, err := c.lockGroup(ctx, id, false)
		switch {
		case err != nil:
			rg.ErrorCode = c.errorFor("DescribeGroups", id, err, kerr.CoordinatorNotAvailable).Code
		case g != nil:
			rg.State, rg.ProtocolType = g.state.String(), g.protocolType
			if g.state == Stable {
				rg.Protocol = g.protocol
			}
			for _, m := range g.sortedMembers() {
				rm := kmsg.NewDescribeGroupsResponseGroupMember()
				rm.MemberID, rm.InstanceID, rm.ClientID, rm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
				if g.state == Stable {
					rm.ProtocolMetadata, rm.MemberAssignment = m.metadataFor(g.protocol), m.assignment
				}
				rg.Members = append(rg.Members, rm)
			}
			g.mu.Unlock()
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

// ListGroups answers a ListGroups request (v0-v4): the groups this broker coordinates, from
// the documents in etcd and the groups it holds in memory, optionally filtered by state
// (v4). Clients ask every broker and merge the answers.
func (c *Coordinator) ListGroups(ctx context.Context, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	stored, err := c.listStoredGroups(ctx)
	if err != nil {
		resp.ErrorCode = c.errorFor("ListGroups", "", err, kerr.CoordinatorNotAvailable).Code
		return resp
	}
	type listed struct{ protocolType, state string }
	out := map[string]listed{}
	snap := c.snapshot()
	for id, doc := range stored {
		if CoordinatorFor(snap, id) == c.opts.NodeID {
			out[id] = listed{doc.ProtocolType, doc.State}
		}
	}
	c.mu.Lock()
	loaded := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		loaded = append(loaded, g)
	}
	c.mu.Unlock()
	for _, g := range loaded {
		g.mu.Lock()
		switch {
		case g.gone:
		case g.rev == 0 && len(g.members) == 0 && len(g.pending) == 0:
			delete(out, g.id) // never stored and nobody in it: not a group yet
		default:
			out[g.id] = listed{g.protocolType, g.state.String()}
		}
		g.mu.Unlock()
	}
	ids := make([]string, 0, len(out))
	for id := range out {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		l := out[id]
		if req.Version >= 4 && len(req.StatesFilter) > 0 && !containsFold(req.StatesFilter, l.state) {
			continue
		}
		rg := kmsg.NewListGroupsResponseGroup()
		rg.Group, rg.ProtocolType, rg.GroupState = id, l.protocolType, l.state
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

// DeleteGroups answers a DeleteGroups request (v0-v2): empty groups lose their document and
// every committed offset; a group with members answers NON_EMPTY_GROUP.
func (c *Coordinator) DeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, id := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = id
		if err := c.deleteGroupRequest(ctx, id); err != nil {
			rg.ErrorCode = err.Code
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

func (c *Coordinator) deleteGroupRequest(ctx context.Context, id string) *kerr.Error {
	if id == "" {
		return kerr.InvalidGroupID
	}
	g, err := c.lockGroup(ctx, id, false)
	if err != nil {
		return c.errorFor("DeleteGroups", id, err, kerr.CoordinatorNotAvailable)
	}
	if g == nil {
		return kerr.GroupIDNotFound
	}
	defer g.mu.Unlock()
	if g.state != Empty || len(g.pending) > 0 {
		return kerr.NonEmptyGroup
	}
	if g.rev == 0 {
		c.drop(g)
		return kerr.GroupIDNotFound
	}
	if err := c.deleteGroup(ctx, g); err != nil {
		if err == errFenced {
			c.drop(g)
		}
		return c.errorFor("DeleteGroups", id, err, kerr.RequestTimedOut)
	}
	c.log.Info("group deleted", "group", id)
	c.drop(g)
	return nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func sortStrings(s []string) { sort.Strings(s) }
func sortInt32s(s []int32)   { sort.Slice(s, func(i, j int) bool { return s[i] < s[j] }) }
