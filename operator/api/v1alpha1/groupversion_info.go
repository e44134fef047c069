// Package v1alpha1 holds the KafScale API types: KafscaleCluster and KafscaleTopic.
//
// The CRD manifests in charts/kafscale/files/crds are generated from these types by
// controller-gen (`make generate`); edit the types, never the manifests. The package
// depends only on the Kubernetes API machinery so any client can import it.
//
// +kubebuilder:object:generate=true
// +groupName=kafscale.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of every type in this package.
	GroupVersion = schema.GroupVersion{Group: "kafscale.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&KafscaleCluster{}, &KafscaleClusterList{},
		&KafscaleTopic{}, &KafscaleTopicList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
