//go:build tools

// The other six binaries of a Kubernetes node (the kind node image of kind/node), built from
// this module with `go build k8s.io/kubernetes/cmd/<name>`: listed here so that go.mod and
// go.sum hold their dependencies, at the same release as kube-apiserver.
package main

import (
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
