package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/operator/api/v1alpha1"
	"github.com/kafscale/kafscale/operator/config"
)

// TopicFinalizer removes a KafscaleTopic's topic from the metadata snapshot before the
// resource goes.
const TopicFinalizer = "kafscale.io/topic"

// TopicReconciler publishes KafscaleTopics into their cluster's metadata snapshot.
type TopicReconciler struct {
	Client client.Client
	Config *config.Operator
	Etcd   *EtcdPool
}

// Reconcile: get → ignore not-found → finalizer → snapshot → status patch.
func (r *TopicReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var t v1alpha1.KafscaleTopic
	if err := r.Client.Get(ctx, req.NamespacedName, &t); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !t.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, r.finalize(ctx, &t)
	}
	if !controllerutil.ContainsFinalizer(&t, TopicFinalizer) {
		before := t.DeepCopy()
		controllerutil.AddFinalizer(&t, TopicFinalizer)
		if err := r.Client.Patch(ctx, &t, client.MergeFrom(before)); err != nil {
			return reconcile.Result{}, fmt.Errorf("add finalizer to %s: %w", req.NamespacedName, err)
		}
	}
	before := t.DeepCopy()
	name, configs := TopicName(&t), TopicConfigs(&t)

	var result reconcile.Result
	var reconcileErr error
	if err := validateTopic(name, configs); err != nil {
		// A spec error: no retry until the spec changes.
		r.setConditions(&t, metav1.ConditionFalse, "InvalidSpec", err.Error())
	} else if store, err := r.store(ctx, &t); err != nil {
		r.setConditions(&t, metav1.ConditionFalse, "ClusterUnavailable", err.Error())
		result.RequeueAfter = etcdRetry
	} else {
		snap, err := store.Update(ctx, func(s *metadata.Snapshot) error {
			if !applyTopic(s, name, t.Spec.Partitions, configs) {
				return metadata.ErrNoChange
			}
			return nil
		})
		if err != nil {
			r.setConditions(&t, metav1.ConditionFalse, "PublishFailed", err.Error())
			reconcileErr = err
		} else {
			published := snap.Topic(name)
			offsets := partitionOffsets(ctx, store, published)
			t.Status.Partitions = int32(len(published.Partitions))
			t.Status.PartitionLeaders = nil
			for _, p := range published.Partitions {
				pl := v1alpha1.PartitionLeader{Partition: p.ID, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch}
				if st, ok := offsets[p.ID]; ok {
					pl.LogStartOffset, pl.HighWatermark = &st.LogStartOffset, &st.HighWatermark
				}
				t.Status.PartitionLeaders = append(t.Status.PartitionLeaders, pl)
			}
			r.setConditions(&t, metav1.ConditionTrue, "Published", fmt.Sprintf("topic %s has %d partitions in the metadata snapshot", name, len(published.Partitions)))
			// Leaders move as brokers come and go; refresh the status now and then.
			result.RequeueAfter = time.Minute
		}
	}
	t.Status.ObservedGeneration = t.Generation
	if err := r.Client.Status().Patch(ctx, &t, client.MergeFrom(before)); err != nil {
		return reconcile.Result{}, fmt.Errorf("patch status of %s: %w", req.NamespacedName, err)
	}
	return result, reconcileErr
}

func validateTopic(name string, configs map[string]string) error {
	errs := []error{metadata.ValidateTopicName(name)}
	keys := make([]string, 0, len(configs))
	for k := range configs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		errs = append(errs, metadata.ValidateTopicConfig(k, configs[k]))
	}
	return errors.Join(errs...)
}

func (r *TopicReconciler) setConditions(t *v1alpha1.KafscaleTopic, status metav1.ConditionStatus, reason, msg string) {
	for _, typ := range []string{v1alpha1.ConditionPublished, v1alpha1.ConditionReady} {
		apimeta.SetStatusCondition(&t.Status.Conditions, metav1.Condition{
			Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: t.Generation,
		})
	}
}

// store finds the topic's cluster and its metadata store.
func (r *TopicReconciler) store(ctx context.Context, t *v1alpha1.KafscaleTopic) (*metadata.Store, error) {
	var c v1alpha1.KafscaleCluster
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: t.Namespace, Name: t.Spec.ClusterRef}, &c); err != nil {
		return nil, fmt.Errorf("KafscaleCluster %s: %w", t.Spec.ClusterRef, err)
	}
	endpoints, _ := EtcdEndpoints(&c, r.Config)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return r.Etcd.Store(ctx, endpoints, metadata.Keys{Namespace: c.Namespace, Cluster: c.Name})
}

// finalize removes the topic from the snapshot, then the finalizer. When the cluster itself
// is gone there is nothing to remove the topic from.
func (r *TopicReconciler) finalize(ctx context.Context, t *v1alpha1.KafscaleTopic) error {
	if !controllerutil.ContainsFinalizer(t, TopicFinalizer) {
		return nil
	}
	store, err := r.store(ctx, t)
	switch {
	case err == nil:
		name := TopicName(t)
		if _, err := store.Update(ctx, func(s *metadata.Snapshot) error {
			if !removeTopic(s, name) {
				return metadata.ErrNoChange
			}
			return nil
		}); err != nil {
			return fmt.Errorf("remove topic %s from the metadata snapshot: %w", name, err)
		}
	case apierrors.IsNotFound(err):
	default:
		return err
	}
	before := t.DeepCopy()
	controllerutil.RemoveFinalizer(t, TopicFinalizer)
	return r.Client.Patch(ctx, t, client.MergeFrom(before))
}

// partitionOffsets reads the topic's partition states (one range read) for the status. They
// are informational: a failed read leaves the offsets out.
func partitionOffsets(ctx context.Context, store *metadata.Store, t *metadata.Topic) map[int32]metadata.PartitionState {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := store.Client().Get(ctx, store.Keys().Partitions()+t.Name+"/", clientv3.WithPrefix())
	if err != nil {
		return nil
	}
	out := map[int32]metadata.PartitionState{}
	for _, kv := range resp.Kvs {
		id, err := strconv.ParseInt(path.Base(string(kv.Key)), 10, 32)
		if err != nil {
			continue
		}
		var st metadata.PartitionState
		if json.Unmarshal(kv.Value, &st) != nil || st.TopicID != t.ID {
			continue // a state left by a deleted topic of the same name
		}
		out[int32(id)] = st
	}
	return out
}
