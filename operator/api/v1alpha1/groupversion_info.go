// Package v1alpha1 holds the KafScale API types: KafscaleCluster and KafscaleTopic.
//
// The CRD manifests in charts/kafscale/files/crds are generated from these types by
// controller-gen (`make generate`); edit the types, never the manifests.
//
// +kubebuilder:object:generate=true
// +groupName=kafscale.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of every type in this package.
	GroupVersion = schema.GroupVersion{Group: "kafscale.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
