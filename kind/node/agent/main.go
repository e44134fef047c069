// Command agent is the node agent of KafScale's offline kind node image: a DaemonSet on
// every node that does what kindnetd and local-path-provisioner do in kind's own image
// (neither can be obtained offline).
//
//   - network: writes the node's CNI config (ptp + host-local over the node's podCIDR,
//     masquerading traffic that leaves the pod network, portmap for hostPorts) and keeps a
//     route to every other node's podCIDR through that node's InternalIP;
//   - storage: provisions PersistentVolumeClaims of the `standard` StorageClass (provisioner
//     kafscale.dev/kind-hostpath, WaitForFirstConsumer) that the scheduler placed on this
//     node, as local PersistentVolumes under /var/local-path/<claim uid>, a directory every
//     user may write (pods run as 65532; kind's host-path fallback makes root-owned 0750
//     directories), and removes a released volume's directory and PersistentVolume.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const (
	provisioner  = "kafscale.dev/kind-hostpath"
	storageClass = "standard"
	volumeRoot   = "/var/local-path"
	cniConfig    = "/etc/cni/net.d/10-kafscale.conflist"
	selectedNode = "volume.kubernetes.io/selected-node"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	node := os.Getenv("NODE_NAME")
	if node == "" {
		log.Error("NODE_NAME is not set (the DaemonSet sets it from spec.nodeName)")
		os.Exit(2)
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		log.Error("in-cluster config", "err", err)
		os.Exit(2)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Error("client", "err", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	a := &agent{cs: cs, node: node, log: log}
	for {
		if err := a.network(ctx); err != nil {
			log.Error("network", "err", err)
		}
		if err := a.storage(ctx); err != nil {
			log.Error("storage", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

type agent struct {
	cs   kubernetes.Interface
	node string
	log  *slog.Logger
}

// network writes this node's CNI config once its podCIDR is known and routes every other
// node's podCIDR through that node.
func (a *agent) network(ctx context.Context) error {
	nodes, err := a.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, n := range nodes.Items {
		if n.Spec.PodCIDR == "" {
			continue
		}
		if n.Name == a.node {
			if err := writeCNIConfig(n.Spec.PodCIDR); err != nil {
				return err
			}
			continue
		}
		ip := internalIP(&n)
		_, dst, err := net.ParseCIDR(n.Spec.PodCIDR)
		if ip == nil || err != nil {
			continue
		}
		if err := netlink.RouteReplace(&netlink.Route{Dst: dst, Gw: ip}); err != nil {
			return fmt.Errorf("route %s via %s: %w", dst, ip, err)
		}
	}
	return nil
}

func internalIP(n *corev1.Node) net.IP {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			if ip := net.ParseIP(a.Address); ip != nil && ip.To4() != nil {
				return ip
			}
		}
	}
	return nil
}

// writeCNIConfig writes the config only when it changed: the runtime reads the directory.
func writeCNIConfig(podCIDR string) error {
	conf := map[string]any{
		"cniVersion": "0.3.1",
		"name":       "kafscale",
		"plugins": []any{
			map[string]any{
				"type":   "ptp",
				"ipMasq": true,
				"mtu":    1500,
				"ipam": map[string]any{
					"type":   "host-local",
					"ranges": []any{[]any{map[string]any{"subnet": podCIDR}}},
					"routes": []any{map[string]any{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	b, _ := json.MarshalIndent(conf, "", "  ")
	if old, err := os.ReadFile(cniConfig); err == nil && bytes.Equal(old, b) {
		return nil
	}
	tmp := cniConfig + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, cniConfig)
}

// storage provisions this node's pending claims and cleans up its released volumes.
func (a *agent) storage(ctx context.Context) error {
	claims, err := a.cs.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, c := range claims.Items {
		if c.Status.Phase != corev1.ClaimPending || c.Spec.VolumeName != "" || c.Annotations[selectedNode] != a.node ||
			c.Spec.StorageClassName == nil || *c.Spec.StorageClassName != storageClass {
			continue
		}
		if err := a.provision(ctx, &c); err != nil {
			return fmt.Errorf("provision %s/%s: %w", c.Namespace, c.Name, err)
		}
	}
	pvs, err := a.cs.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, pv := range pvs.Items {
		if pv.Annotations["pv.kubernetes.io/provisioned-by"] != provisioner || pv.Annotations[selectedNode] != a.node ||
			pv.Status.Phase != corev1.VolumeReleased || pv.Spec.Local == nil {
			continue
		}
		if err := os.RemoveAll(pv.Spec.Local.Path); err != nil {
			return err
		}
		if err := a.cs.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		a.log.Info("deleted volume", "pv", pv.Name)
	}
	return nil
}

func (a *agent) provision(ctx context.Context, c *corev1.PersistentVolumeClaim) error {
	name := "pvc-" + string(c.UID)
	dir := filepath.Join(volumeRoot, string(c.UID))
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	// MkdirAll's mode is masked by the umask; the volume must be writable by any user.
	if err := os.Chmod(dir, 0o777); err != nil {
		return err
	}
	size := c.Spec.Resources.Requests[corev1.ResourceStorage]
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": provisioner, selectedNode: a.node},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   c.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              storageClass,
			ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: c.Namespace, Name: c.Name, UID: c.UID},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: dir}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{a.node}}},
			}}}},
		},
	}
	if _, err := a.cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	a.log.Info("provisioned volume", "pv", name, "claim", c.Namespace+"/"+c.Name, "dir", dir)
	return nil
}
