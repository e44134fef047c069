package flexcheck

// The inline fields of each request the broker answers, for its flexible versions (written
// from the Kafka protocol's message definitions; tests check them against kmsg's encoding of
// every version the broker registers). Tagged fields are not listed: they are skipped by
// size, except the structures listed under tagged.

type kind uint8

const (
	kindFixed        kind = iota // size bytes: integers, booleans, UUIDs
	kindCompact                  // compact (nullable) string or bytes
	kindFixedArray               // compact array of size-byte elements
	kindCompactArray             // compact array of compact strings
	kindStructArray              // compact array of structures, each ending in a tag section
)

// field is one inline field, present in versions since..until (until -1: no end).
type field struct {
	kind         kind
	size         int
	since, until int16
	elem         *structure
}

// structure is a sequence of inline fields followed by a tag section whose keys in tagged
// are structures kmsg decodes.
type structure struct {
	fields []field
	tagged map[uint32]*structure
}

type schema struct {
	flexible, max int16 // the flexible versions covered
	body          structure
}

func fixed(size int) field { return field{kind: kindFixed, size: size, until: -1} }

var (
	i8      = fixed(1)
	i16     = fixed(2)
	i32     = fixed(4)
	i64     = fixed(8)
	boolean = fixed(1)
	uuid    = fixed(16)
	str     = field{kind: kindCompact, until: -1} // compact string, nullable or not
	blob    = str                                 // compact bytes: the same on the wire
	i32s    = field{kind: kindFixedArray, size: 4, until: -1}
	strs    = field{kind: kindCompactArray, until: -1}
)

func array(fs ...field) field {
	return field{kind: kindStructArray, until: -1, elem: &structure{fields: fs}}
}

func (f field) from(v int16) field { f.since = v; return f }
func (f field) upTo(v int16) field { f.until = v; return f }

func body(fs ...field) structure { return structure{fields: fs} }

// schemas by API key. max is the highest version written here; the broker's registrations
// must not go beyond it (a test checks).
var schemas = map[int16]schema{
	0: {9, 11, body( // Produce
		str.from(3), // TransactionalID
		i16, i32,    // Acks, TimeoutMillis
		array(str.upTo(12), // Topic
			array(i32, blob)), // Partition, Records
	)},
	1: {12, 12, structure{ // Fetch
		fields: []field{
			i32.upTo(14),                      // ReplicaID
			i32, i32, i32.from(3), i8.from(4), // MaxWaitMillis, MinBytes, MaxBytes, IsolationLevel
			i32.from(7), i32.from(7), // SessionID, SessionEpoch
			array(str.upTo(12), uuid.from(13), // Topic, TopicID
				array(i32, i32.from(9), i64, // Partition, CurrentLeaderEpoch, FetchOffset
					i32.from(12), i64.from(5), i32)), // LastFetchedEpoch, LogStartOffset, PartitionMaxBytes
			array(str.upTo(12), uuid.from(13), i32s).from(7), // ForgottenTopics
			str.from(11), // Rack
		},
		tagged: map[uint32]*structure{1: {fields: []field{i32, i64}}}, // ReplicaState
	}},
	2: {6, 6, body( // ListOffsets
		i32, i8.from(2), // ReplicaID, IsolationLevel
		array(str, // Topic
			array(i32, i32.from(4), i64, i32.upTo(0))), // Partition, CurrentLeaderEpoch, Timestamp, MaxNumOffsets
	)},
	3: {9, 12, body( // Metadata
		array(uuid.from(10), str), // Topics: TopicID, Topic
		boolean.from(4),           // AllowAutoTopicCreation
		boolean.from(8).upTo(10),  // IncludeClusterAuthorizedOperations
		boolean.from(8),           // IncludeTopicAuthorizedOperations
	)},
	8: {8, 8, body( // OffsetCommit
		str, i32.from(1), str.from(1), str.from(7), // Group, Generation, MemberID, InstanceID
		i64.from(2).upTo(4), // RetentionTimeMillis
		array(str, // Topic
			array(i32, i64, i64.from(1).upTo(1), i32.from(6), str)), // Partition, Offset, Timestamp, LeaderEpoch, Metadata
	)},
	9: {6, 8, body( // OffsetFetch
		str.upTo(7),              // Group
		array(str, i32s).upTo(7), // Topics: Topic, Partitions
		array(str, str.from(9), i32.from(9), // Groups: Group, MemberID, MemberEpoch
			array(str, i32s)).from(8), // Topics: Topic, Partitions
		boolean.from(7), // RequireStable
	)},
	10: {3, 4, body( // FindCoordinator
		str.upTo(3), i8.from(1), strs.from(4), // CoordinatorKey, CoordinatorType, CoordinatorKeys
	)},
	11: {6, 9, body( // JoinGroup
		str, i32, i32.from(1), str, str.from(5), str, // Group, SessionTimeout, RebalanceTimeout, MemberID, InstanceID, ProtocolType
		array(str, blob), // Protocols: Name, Metadata
		str.from(8),      // Reason
	)},
	12: {4, 4, body(str, i32, str, str.from(3))}, // Heartbeat: Group, Generation, MemberID, InstanceID
	13: {4, 5, body( // LeaveGroup
		str, str.upTo(2), // Group, MemberID
		array(str, str, str.from(5)).from(3), // Members: MemberID, InstanceID, Reason
	)},
	14: {4, 5, body( // SyncGroup
		str, i32, str, str.from(3), // Group, Generation, MemberID, InstanceID
		str.from(5), str.from(5), // ProtocolType, Protocol
		array(str, blob), // GroupAssignment: MemberID, MemberAssignment
	)},
	15: {5, 5, body(strs, boolean.from(3))},      // DescribeGroups: Groups, IncludeAuthorizedOperations
	16: {3, 4, body(strs.from(4), strs.from(5))}, // ListGroups: StatesFilter, TypesFilter
	18: {3, 3, body(str.from(3), str.from(3))},   // ApiVersions: ClientSoftwareName, ClientSoftwareVersion
	19: {5, 7, body( // CreateTopics
		array(str, i32, i16, // Topic, NumPartitions, ReplicationFactor
			array(i32, i32s), // ReplicaAssignment: Partition, Replicas
			array(str, str)), // Configs: Name, Value
		i32, boolean.from(1), // TimeoutMillis, ValidateOnly
	)},
	20: {4, 6, body( // DeleteTopics
		strs.upTo(5),             // TopicNames
		array(str, uuid).from(6), // Topics: Topic, TopicID
		i32,                      // TimeoutMillis
	)},
	22: {2, 4, body(str, i32, i64.from(3), i16.from(3))}, // InitProducerID: TransactionalID, TransactionTimeout, ProducerID, ProducerEpoch
	23: {4, 4, body( // OffsetForLeaderEpoch
		i32.from(3),                              // ReplicaID
		array(str, array(i32, i32.from(2), i32)), // Topics: Topic, Partitions: Partition, CurrentLeaderEpoch, LeaderEpoch
	)},
	32: {4, 4, body( // DescribeConfigs
		array(i8, str, strs),             // Resources: ResourceType, ResourceName, ConfigNames
		boolean.from(1), boolean.from(3), // IncludeSynonyms, IncludeDocumentation
	)},
	33: {2, 2, body( // AlterConfigs
		array(i8, str, array(str, str)), // Resources: ResourceType, ResourceName, Configs: Name, Value
		boolean,                         // ValidateOnly
	)},
	37: {2, 3, body( // CreatePartitions
		array(str, i32, array(i32s)), // Topics: Topic, Count, Assignment: Replicas
		i32, boolean,                 // TimeoutMillis, ValidateOnly
	)},
	42: {2, 2, body(strs)}, // DeleteGroups: Groups
	44: {1, 1, body( // IncrementalAlterConfigs
		array(i8, str, array(str, i8, str)), // Resources: ResourceType, ResourceName, Configs: Name, Op, Value
		boolean,                             // ValidateOnly
	)},
	60: {0, 1, body(boolean, i8.from(1))}, // DescribeCluster: IncludeClusterAuthorizedOperations, EndpointType
}
