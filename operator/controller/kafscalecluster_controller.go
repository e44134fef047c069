package controller

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/operator/api/v1alpha1"
	"github.com/kafscale/kafscale/operator/config"
)

// ClusterReconciler turns a KafscaleCluster into broker objects and its metadata snapshot.
type ClusterReconciler struct {
	Client client.Client
	Scheme *runtime.Scheme
	Config *config.Operator
	Etcd   *EtcdPool
	// Preflight prepares and checks the etcd snapshot bucket and says what it found; nil
	// skips it (and the EtcdSnapshotAccess condition).
	Preflight func(ctx context.Context, c *v1alpha1.KafscaleCluster) (string, error)
	// Recorder, when set, records Drained / DrainFailed events on pods a scale-down drains.
	Recorder events.EventRecorder
}

// etcdRetry is how soon a cluster whose etcd or snapshot bucket failed is looked at again.
const etcdRetry = 10 * time.Second

// Reconcile: get → ignore not-found → children → etcd snapshot → status patch.
func (r *ClusterReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	var c v1alpha1.KafscaleCluster
	if err := r.Client.Get(ctx, req.NamespacedName, &c); err != nil {
		if apierrors.IsNotFound(err) {
			forgetCluster(req.Name)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !c.DeletionTimestamp.IsZero() {
		// Owned objects go with the cluster (owner references); its etcd data stays.
		forgetCluster(c.Name)
		return ctrl.Result{}, nil
	}
	before := c.DeepCopy()
	endpoints, managed := EtcdEndpoints(&c, r.Config)
	if managed {
		if err := r.reconcileManagedEtcd(ctx, &c); err != nil {
			return ctrl.Result{}, err
		}
	}

	deploy, err := r.reconcileBrokers(ctx, &c, endpoints)
	if err != nil {
		return ctrl.Result{}, err
	}

	if err := r.reconcileSnapshotCronJob(ctx, &c, endpoints); err != nil {
		return ctrl.Result{}, err
	}

	r.checkCredentialsSecret(ctx, &c)

	var errs []error
	c.Status.EtcdEndpoints = endpoints
	if err := r.publishCluster(ctx, &c, endpoints); err != nil {
		setCondition(&c, v1alpha1.ConditionEtcdAvailable, metav1.ConditionFalse, "EtcdUnavailable", err.Error())
		errs = append(errs, err)
	} else {
		setCondition(&c, v1alpha1.ConditionEtcdAvailable, metav1.ConditionTrue, "EtcdAnswered", "the metadata snapshot is published in etcd")
	}
	if r.Preflight != nil {
		msg, err := r.Preflight(ctx, &c)
		switch {
		case err != nil:
			setCondition(&c, v1alpha1.ConditionEtcdSnapshotAccess, metav1.ConditionFalse, "S3WriteFailed", err.Error())
			snapshotAccessOK.WithLabelValues(c.Name).Set(0)
			errs = append(errs, fmt.Errorf("etcd snapshot bucket: %w", err))
		case r.Config.SnapshotSkipPreflight:
			// Nothing was written, so write access is not known, and no access series is
			// exported for the access alert to judge.
			setCondition(&c, v1alpha1.ConditionEtcdSnapshotAccess, metav1.ConditionUnknown, "PreflightSkipped", msg)
			snapshotAccessOK.DeleteLabelValues(c.Name)
		default:
			setCondition(&c, v1alpha1.ConditionEtcdSnapshotAccess, metav1.ConditionTrue, "S3WriteSucceeded", msg)
			snapshotAccessOK.WithLabelValues(c.Name).Set(1)
		}
	}

	desired := desiredReplicas(&c)
	if deploy.Spec.Replicas != nil {
		desired = *deploy.Spec.Replicas
	}
	c.Status.ReadyBrokers = deploy.Status.ReadyReplicas
	switch {
	case deploy.Status.ObservedGeneration < deploy.Generation:
		setCondition(&c, v1alpha1.ConditionBrokersReady, metav1.ConditionFalse, "RolloutPending", "the broker Deployment has not observed its latest spec")
	case deploy.Status.ReadyReplicas >= desired && deploy.Status.UpdatedReplicas >= desired:
		setCondition(&c, v1alpha1.ConditionBrokersReady, metav1.ConditionTrue, "BrokersReady", fmt.Sprintf("%d of %d brokers ready", deploy.Status.ReadyReplicas, desired))
	default:
		setCondition(&c, v1alpha1.ConditionBrokersReady, metav1.ConditionFalse, "BrokersNotReady", fmt.Sprintf("%d of %d brokers ready", deploy.Status.ReadyReplicas, desired))
	}
	c.Status.Replicas = deploy.Status.Replicas
	c.Status.Selector = labels.SelectorFromSet(brokerSelector(&c)).String()
	desiredBrokers.WithLabelValues(c.Name).Set(float64(desired))
	readyBrokers.WithLabelValues(c.Name).Set(float64(c.Status.ReadyBrokers))

	ready, reason, msg := metav1.ConditionTrue, "Ready", "brokers are ready and the metadata is published"
	readyWhen := []string{v1alpha1.ConditionEtcdAvailable, v1alpha1.ConditionBrokersReady}
	if c.Spec.S3.CredentialsSecretRef != nil {
		readyWhen = append(readyWhen, v1alpha1.ConditionS3Credentials)
	}
	for _, t := range readyWhen {
		if cond := apimeta.FindStatusCondition(c.Status.Conditions, t); cond.Status != metav1.ConditionTrue {
			ready, reason, msg = metav1.ConditionFalse, cond.Reason, cond.Message
			break
		}
	}
	setCondition(&c, v1alpha1.ConditionReady, ready, reason, msg)
	c.Status.ObservedGeneration = c.Generation
	if err := r.Client.Status().Patch(ctx, &c, client.MergeFrom(before)); err != nil {
		return ctrl.Result{}, fmt.Errorf("patch status of %s: %w", req.NamespacedName, err)
	}
	if err := errors.Join(errs...); err != nil {
		// Returned so controller-runtime counts it and retries with backoff.
		logger.Info("cluster not fully reconciled", "err", err)
		return ctrl.Result{}, err
	}
	if r.Preflight != nil {
		return ctrl.Result{RequeueAfter: r.Config.SnapshotPreflightEvery}, nil
	}
	return ctrl.Result{}, nil
}

// checkCredentialsSecret sets the S3Credentials condition from the Secret that
// spec.s3.credentialsSecretRef names (watched, so a fixed Secret clears it at once). Pods map
// its keys optionally, so a Secret with no usable pair would otherwise show only as brokers
// failing their S3 startup check.
func (r *ClusterReconciler) checkCredentialsSecret(ctx context.Context, c *v1alpha1.KafscaleCluster) {
	ref := c.Spec.S3.CredentialsSecretRef
	if ref == nil {
		apimeta.RemoveStatusCondition(&c.Status.Conditions, v1alpha1.ConditionS3Credentials)
		return
	}
	var sec corev1.Secret
	switch err := r.Client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: ref.Name}, &sec); {
	case apierrors.IsNotFound(err):
		setCondition(c, v1alpha1.ConditionS3Credentials, metav1.ConditionFalse, "SecretNotFound",
			fmt.Sprintf("S3 credentials Secret %s does not exist in namespace %s: create it with %s and %s (or %s and %s)",
				ref.Name, c.Namespace, SecretKeyAccessKey, SecretKeySecretKey, SecretKeyAWSAccessKey, SecretKeyAWSSecretKey))
		return
	case err != nil:
		setCondition(c, v1alpha1.ConditionS3Credentials, metav1.ConditionUnknown, "SecretUnreadable", fmt.Sprintf("read S3 credentials Secret %s: %v", ref.Name, err))
		return
	}
	creds, err := CredentialsFromSecret(&sec)
	if err != nil {
		setCondition(c, v1alpha1.ConditionS3Credentials, metav1.ConditionFalse, "SecretKeysMissing", err.Error())
		return
	}
	setCondition(c, v1alpha1.ConditionS3Credentials, metav1.ConditionTrue, "SecretKeysFound", fmt.Sprintf("Secret %s holds %s", ref.Name, creds.Pair))
}

func setCondition(c *v1alpha1.KafscaleCluster, typ string, status metav1.ConditionStatus, reason, msg string) {
	apimeta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: c.Generation,
	})
}

// reconcileBrokers creates or updates the owned broker objects and returns the Deployment
// as stored.
func (r *ClusterReconciler) reconcileBrokers(ctx context.Context, c *v1alpha1.KafscaleCluster, endpoints []string) (*appsv1.Deployment, error) {
	in := BrokerInputs{Config: r.Config, EtcdEndpoints: endpoints}
	if name := r.Config.BrokerEnvConfigMap; name != "" {
		var cm corev1.ConfigMap
		switch err := r.Client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: name}, &cm); {
		case err == nil:
			in.EnvHash = HashData(cm.Data)
		case !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("read broker environment ConfigMap %s: %w", name, err)
		}
	}

	want := BrokerDeployment(c, in)
	var cur *appsv1.Deployment
	var stored appsv1.Deployment
	switch err := r.Client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: want.Name}, &stored); {
	case err == nil:
		cur = &stored
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("read broker Deployment %s: %w", want.Name, err)
	}
	outsideHPA, err := r.outsideHPA(ctx, c)
	if err != nil {
		return nil, err
	}
	replicas := BrokerReplicas(c, cur, outsideHPA)
	switch {
	case replicas != nil:
		// Fewer replicas from the spec: drain the brokers that go away first.
		if err := r.drainForScaleDown(ctx, c, *replicas); err != nil {
			return nil, err
		}
	case cur != nil && cur.Spec.Replicas != nil && c.Spec.Brokers.Autoscaling == nil:
		// The count stays as someone else set it: only replace pods a spec scale-down drained
		// and marked that the ReplicaSet is no longer going to delete.
		if err := r.drainForScaleDown(ctx, c, *cur.Spec.Replicas); err != nil {
			return nil, err
		}
	}
	deploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: want.Name, Namespace: want.Namespace}}
	if err := r.apply(ctx, c, deploy, func() {
		deploy.Labels = want.Labels
		if deploy.CreationTimestamp.IsZero() {
			deploy.Spec.Selector = want.Spec.Selector
		}
		if replicas != nil {
			deploy.Spec.Replicas = replicas
			if deploy.Annotations == nil {
				deploy.Annotations = map[string]string{}
			}
			deploy.Annotations[SpecReplicasAnnotation] = strconv.Itoa(int(*replicas))
		}
		restartedAt := deploy.Spec.Template.Annotations[restartedAtAnnotation]
		deploy.Spec.Strategy = want.Spec.Strategy
		deploy.Spec.MinReadySeconds = want.Spec.MinReadySeconds
		deploy.Spec.Template = want.Spec.Template
		if restartedAt != "" {
			deploy.Spec.Template.Annotations[restartedAtAnnotation] = restartedAt
		}
	}); err != nil {
		return nil, err
	}

	headless, clientSvc := BrokerServices(c)
	for _, want := range []*corev1.Service{headless, clientSvc} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: want.Name, Namespace: want.Namespace}}
		if err := r.apply(ctx, c, svc, func() {
			svc.Labels, svc.Annotations = want.Labels, want.Annotations
			if svc.CreationTimestamp.IsZero() {
				svc.Spec.ClusterIP = want.Spec.ClusterIP
			}
			svc.Spec.Type = want.Spec.Type
			svc.Spec.Selector = want.Spec.Selector
			svc.Spec.PublishNotReadyAddresses = want.Spec.PublishNotReadyAddresses
			svc.Spec.LoadBalancerSourceRanges = want.Spec.LoadBalancerSourceRanges
			svc.Spec.Ports = mergePorts(svc.Spec.Ports, want.Spec.Ports)
		}); err != nil {
			return nil, err
		}
	}

	wantPDB := BrokerPDB(c)
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: wantPDB.Name, Namespace: wantPDB.Namespace}}
	if err := r.apply(ctx, c, pdb, func() { pdb.Labels, pdb.Spec = wantPDB.Labels, wantPDB.Spec }); err != nil {
		return nil, err
	}

	hpa := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: BrokerName(c), Namespace: c.Namespace}}
	if wantHPA := BrokerHPA(c); wantHPA != nil {
		if err := r.apply(ctx, c, hpa, func() { hpa.Labels, hpa.Spec = wantHPA.Labels, wantHPA.Spec }); err != nil {
			return nil, err
		}
	} else {
		// Delete only the HPA this cluster made: `kubectl autoscale deployment <cluster>-broker`
		// makes one with the same name, which is the user's.
		switch err := r.Client.Get(ctx, client.ObjectKeyFromObject(hpa), hpa); {
		case apierrors.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("read broker HPA: %w", err)
		case metav1.IsControlledBy(hpa, c):
			if err := r.Client.Delete(ctx, hpa); err != nil && !apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("delete broker HPA: %w", err)
			}
		}
	}
	return deploy, nil
}

// outsideHPA reports whether a HorizontalPodAutoscaler the cluster does not own scales its
// broker Deployment (`kubectl autoscale`, or one applied by hand).
func (r *ClusterReconciler) outsideHPA(ctx context.Context, c *v1alpha1.KafscaleCluster) (bool, error) {
	var list autoscalingv2.HorizontalPodAutoscalerList
	if err := r.Client.List(ctx, &list, client.InNamespace(c.Namespace)); err != nil {
		return false, fmt.Errorf("list HorizontalPodAutoscalers: %w", err)
	}
	for i := range list.Items {
		h := &list.Items[i]
		if TargetsBrokers(c, h) && !metav1.IsControlledBy(h, c) && h.DeletionTimestamp.IsZero() {
			return true, nil
		}
	}
	return false, nil
}

// drainForScaleDown, when the broker Deployment is about to get fewer replicas than it has,
// picks the pods the ReplicaSet will delete (scaleDownVictims), drains their brokers through
// their control services and marks them with the lowest pod-deletion-cost, so the ReplicaSet
// deletes exactly them. The replicas are lowered (by the caller) only after every drain
// succeeded; a failed drain returns an error and the scale-down waits for the next try.
func (r *ClusterReconciler) drainForScaleDown(ctx context.Context, c *v1alpha1.KafscaleCluster, want int32) error {
	logger := log.FromContext(ctx)
	var cur appsv1.Deployment
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: BrokerName(c)}, &cur); err != nil {
		return client.IgnoreNotFound(err)
	}
	if cur.Spec.Replicas == nil {
		return nil
	}
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(c.Namespace), client.MatchingLabels(brokerSelector(c))); err != nil {
		return fmt.Errorf("list broker pods for the scale-down to %d: %w", want, err)
	}
	live := 0
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			live++
		}
	}
	if *cur.Spec.Replicas <= want {
		if live <= int(want) {
			return r.replaceAbandonedDrained(ctx, pods.Items)
		}
		return nil
	}
	// Pods that were never created need no drain.
	excess := min(int(*cur.Spec.Replicas-want), live-int(want))
	d := &brokerDrainer{Config: r.Config, Etcd: r.Etcd, Recorder: r.Recorder}
	for _, p := range scaleDownVictims(pods.Items, excess) {
		out, err := d.drainAndRecord(ctx, c, p, fmt.Sprintf("scale-down of %s from %d to %d brokers", BrokerName(c), *cur.Spec.Replicas, want))
		if err != nil {
			return fmt.Errorf("scale-down of %s from %d to %d waits for pod %s: %w", BrokerName(c), *cur.Spec.Replicas, want, p.Name, err)
		}
		if p.Annotations[PodDeletionCostAnnotation] != ScaleDownDeletionCost {
			before := p.DeepCopy()
			if p.Annotations == nil {
				p.Annotations = map[string]string{}
			}
			p.Annotations[PodDeletionCostAnnotation] = ScaleDownDeletionCost
			if err := r.Client.Patch(ctx, p, client.MergeFrom(before)); err != nil {
				return fmt.Errorf("mark pod %s for the scale-down (%s): %w", p.Name, PodDeletionCostAnnotation, err)
			}
		}
		logger.Info("broker drained for scale-down", "cluster", c.Name, "pod", p.Name, "from", *cur.Spec.Replicas, "to", want, "result", drainSummary(out))
	}
	return nil
}

// replaceAbandonedDrained deletes the pods a scale-down drained and marked that the
// ReplicaSet is not going to delete (the replicas were raised again before it did): their
// brokers stay drained until they restart, so the ReplicaSet replaces them with serving ones.
// Called only when no more pods run than the Deployment wants.
func (r *ClusterReconciler) replaceAbandonedDrained(ctx context.Context, pods []corev1.Pod) error {
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil || p.Annotations[PodDeletionCostAnnotation] != ScaleDownDeletionCost {
			continue
		}
		if err := r.Client.Delete(ctx, p); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("replace pod %s, drained for a scale-down that was undone: %w", p.Name, err)
		}
		log.FromContext(ctx).Info("deleted a pod drained for a scale-down that was undone; the ReplicaSet replaces it", "pod", p.Name)
	}
	return nil
}

// reconcileSnapshotCronJob creates or updates the etcd snapshot CronJob (when the operator
// knows its own image) and exports when it last started a Job.
func (r *ClusterReconciler) reconcileSnapshotCronJob(ctx context.Context, c *v1alpha1.KafscaleCluster, endpoints []string) error {
	if r.Config.OperatorImage == "" {
		setCondition(c, v1alpha1.ConditionEtcdSnapshotScheduled, metav1.ConditionFalse, "OperatorImageUnknown",
			"the operator does not know its own image: set KAFSCALE_OPERATOR_IMAGE (or let it read its pod) for the snapshot CronJob and the managed etcd's restore init containers; POST /api/v1/etcd/snapshot still takes snapshots")
		return nil
	}
	want := SnapshotCronJob(c, r.Config, endpoints)
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: want.Name, Namespace: want.Namespace}}
	if err := r.apply(ctx, c, cj, func() { cj.Labels, cj.Spec = want.Labels, want.Spec }); err != nil {
		return err
	}
	setCondition(c, v1alpha1.ConditionEtcdSnapshotScheduled, metav1.ConditionTrue, "CronJobScheduled", fmt.Sprintf("CronJob %s snapshots etcd on %q", cj.Name, cj.Spec.Schedule))
	var last float64
	if t := cj.Status.LastScheduleTime; t != nil {
		last = float64(t.Unix())
	}
	snapshotLastSchedule.WithLabelValues(c.Name).Set(last)
	return nil
}

// reconcileManagedEtcd creates or updates the managed etcd's StatefulSet, Services and PDB.
func (r *ClusterReconciler) reconcileManagedEtcd(ctx context.Context, c *v1alpha1.KafscaleCluster) error {
	want := EtcdStatefulSet(c, r.Config)
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: want.Name, Namespace: want.Namespace}}
	if err := r.apply(ctx, c, sts, func() {
		sts.Labels = want.Labels
		if sts.CreationTimestamp.IsZero() {
			// Selector, service name and claim templates are immutable.
			sts.Spec = want.Spec
			return
		}
		sts.Spec.Replicas = want.Spec.Replicas
		sts.Spec.Template = want.Spec.Template
	}); err != nil {
		return err
	}
	peer, client := EtcdServices(c)
	for _, want := range []*corev1.Service{peer, client} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: want.Name, Namespace: want.Namespace}}
		if err := r.apply(ctx, c, svc, func() {
			svc.Labels = want.Labels
			if svc.CreationTimestamp.IsZero() {
				svc.Spec.ClusterIP = want.Spec.ClusterIP
			}
			svc.Spec.Type, svc.Spec.Selector = want.Spec.Type, want.Spec.Selector
			svc.Spec.PublishNotReadyAddresses = want.Spec.PublishNotReadyAddresses
			svc.Spec.Ports = mergePorts(svc.Spec.Ports, want.Spec.Ports)
		}); err != nil {
			return err
		}
	}
	wantPDB := EtcdPDB(c)
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: wantPDB.Name, Namespace: wantPDB.Namespace}}
	return r.apply(ctx, c, pdb, func() { pdb.Labels, pdb.Spec = wantPDB.Labels, wantPDB.Spec })
}

// mergePorts keeps server-assigned fields (node ports) of ports that stay.
func mergePorts(have, want []corev1.ServicePort) []corev1.ServicePort {
	out := make([]corev1.ServicePort, len(want))
	for i, w := range want {
		for _, h := range have {
			if h.Name == w.Name && w.NodePort == 0 {
				w.NodePort = h.NodePort
			}
		}
		out[i] = w
	}
	return out
}

// apply creates or updates an owned object with mutate.
func (r *ClusterReconciler) apply(ctx context.Context, owner *v1alpha1.KafscaleCluster, obj client.Object, mutate func()) error {
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, obj, func() error {
		mutate()
		return controllerutil.SetControllerReference(owner, obj, r.Scheme)
	})
	if err != nil {
		return fmt.Errorf("apply %T %s: %w", obj, obj.GetName(), err)
	}
	return nil
}

// publishCluster makes sure the cluster's metadata snapshot exists (with a cluster id).
// Brokers and partition leaders are kept by the brokers' own controller; topics by the
// KafscaleTopic reconciler.
func (r *ClusterReconciler) publishCluster(ctx context.Context, c *v1alpha1.KafscaleCluster, endpoints []string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	store, err := r.Etcd.Store(ctx, endpoints, metadata.Keys{Namespace: c.Namespace, Cluster: c.Name})
	if err != nil {
		return err
	}
	_, err = store.Update(ctx, func(s *metadata.Snapshot) error {
		if !ensureClusterID(s) {
			return metadata.ErrNoChange
		}
		return nil
	})
	return err
}
