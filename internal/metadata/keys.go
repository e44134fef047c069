package metadata

import (
	"fmt"
	"strconv"
)

// Keys builds the etcd keys of one cluster, all under /kafscale/<namespace>/<cluster>/.
type Keys struct {
	Namespace string
	Cluster   string
}

// Prefix is the root of every key of this cluster, with a trailing slash.
func (k Keys) Prefix() string { return fmt.Sprintf("/kafscale/%s/%s/", k.Namespace, k.Cluster) }

// Metadata is the key of the snapshot document.
func (k Keys) Metadata() string { return k.Prefix() + "metadata" }

// Brokers is the prefix of the broker liveness keys.
func (k Keys) Brokers() string { return k.Prefix() + "brokers/" }

// Broker is one broker's liveness key, held under an etcd lease.
func (k Keys) Broker(nodeID int32) string { return k.Brokers() + strconv.Itoa(int(nodeID)) }

// IDs is the prefix of the node id claims of brokers started with KAFSCALE_BROKER_ID=auto.
func (k Keys) IDs() string { return k.Prefix() + "ids/" }

// ID is the claim of one node id, held under the claiming broker's registration lease (the
// lease of its Broker key), so it frees when that broker deregisters or its lease expires.
func (k Keys) ID(nodeID int32) string { return k.IDs() + strconv.Itoa(int(nodeID)) }

// Partitions is the prefix of every partition state key.
func (k Keys) Partitions() string { return k.Prefix() + "partitions/" }

// Partition is the state key of one partition.
func (k Keys) Partition(topic string, partition int32) string {
	return k.Partitions() + topic + "/" + strconv.Itoa(int(partition))
}

// Group is the key of a consumer group's state.
func (k Keys) Group(group string) string { return k.Prefix() + "groups/" + group }

// Offset is the key of a committed offset.
func (k Keys) Offset(group, topic string, partition int32) string {
	return k.Prefix() + "offsets/" + group + "/" + topic + "/" + strconv.Itoa(int(partition))
}

// ProducerIDs is the counter of allocated producer ids: the first id not yet handed out.
func (k Keys) ProducerIDs() string { return k.Prefix() + "producer-ids" }
