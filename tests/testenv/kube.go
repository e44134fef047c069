package testenv

import (
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Kube is a real kube-apiserver backed by its own etcd, started by controller-runtime's
// envtest from the binaries in ./bin. envtest generates the serving and client certificates
// and the service-account signing key pair.
type Kube struct {
	Config *rest.Config
	Client client.Client
	Scheme *runtime.Scheme
	env    *envtest.Environment
}

// KubeOption adjusts the environment before it starts.
type KubeOption func(*envtest.Environment)

// WithCRDPaths installs the CRDs found in these files or directories before returning.
func WithCRDPaths(paths ...string) KubeOption {
	return func(e *envtest.Environment) {
		e.CRDDirectoryPaths = append(e.CRDDirectoryPaths, paths...)
		e.ErrorIfCRDPathMissing = true
	}
}

// StartKube starts kube-apiserver (and its etcd) on free loopback ports and returns a client
// whose scheme knows the built-in types and CRDs. It is stopped when the test ends.
func StartKube(t testing.TB, opts ...KubeOption) *Kube {
	t.Helper()
	dir := BinDir(t)
	Binary(t, "kube-apiserver")
	Binary(t, "etcd")

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: dir,
		Scheme:                scheme,
	}
	for _, opt := range opts {
		opt(env)
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("testenv: start kube-apiserver: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("testenv: stop kube-apiserver: %v", err)
		}
	})
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatalf("testenv: kube client: %v", err)
	}
	return &Kube{Config: cfg, Client: c, Scheme: scheme, env: env}
}
