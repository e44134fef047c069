package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/kafscale/kafscale/internal/ociimage"
)

// NodeRegistry names the images of the offline kind node image that are ours (etcd for the
// control plane, CoreDNS, the node agent): kind/kind-config.yaml's kubeadm patch points the
// control plane's etcd and DNS there. Kubernetes' own images keep their registry.k8s.io
// names, which kubeadm asks for.
const NodeRegistry = Registry + "/kind-node"

// runNode writes the images the offline kind node image holds (`images node`, called by
// kind/node/build.sh): the control plane, kube-proxy (with the iptables of the node's Debian
// rootfs, in legacy mode as kind's entrypoint selects), pause, etcd, CoreDNS and the node
// agent. They run as root: kubeadm gives their pods no runAsUser, and they read root-only
// keys, bind port 53 or change the node's network.
func runNode(args []string) error {
	fs := flag.NewFlagSet("images node", flag.ExitOnError)
	out := fs.String("out", "", "directory for the archives")
	kubeBin := fs.String("kube-bin", "", "directory with kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy")
	kubeVersion := fs.String("kube-version", "", "Kubernetes version, e.g. v1.34.4")
	rootfs := fs.String("rootfs", "", "the node's Debian rootfs (kube-proxy's iptables come from it)")
	proxyFiles := fs.String("kube-proxy-files", "", "file listing the rootfs paths kube-proxy's image holds, one a line")
	etcd := fs.String("etcd", "", "static etcd binary")
	etcdVersion := fs.String("etcd-version", "", "etcd's version")
	coredns := fs.String("coredns", "", "static CoreDNS binary")
	corednsVersion := fs.String("coredns-version", "", "CoreDNS's version")
	pause := fs.String("pause", "", "static pause binary")
	agent := fs.String("agent", "", "static node agent binary")
	agentTag := fs.String("agent-tag", "", "the node agent image's tag")
	_ = fs.Parse(args)
	for name, v := range map[string]string{"out": *out, "kube-bin": *kubeBin, "kube-version": *kubeVersion, "rootfs": *rootfs,
		"kube-proxy-files": *proxyFiles, "etcd": *etcd, "etcd-version": *etcdVersion, "coredns": *coredns,
		"coredns-version": *corednsVersion, "pause": *pause, "agent": *agent, "agent-tag": *agentTag} {
		if v == "" {
			return fmt.Errorf("images node: -%s is required", name)
		}
	}
	rev, err := revision()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	labels := func(title, version, src string) map[string]string {
		return map[string]string{
			"org.opencontainers.image.title":    title,
			"org.opencontainers.image.version":  version,
			"org.opencontainers.image.source":   src,
			"org.opencontainers.image.revision": rev.commit,
			"org.opencontainers.image.created":  rev.time.UTC().Format(time.RFC3339),
		}
	}
	bin := func(path, src string) ociimage.File {
		return ociimage.File{Path: path, Source: src, Mode: 0o755, Static: true}
	}
	type image struct {
		name string
		refs []string
		spec ociimage.Spec
	}
	var images []image
	for _, c := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		images = append(images, image{c, []string{"registry.k8s.io/" + c + ":" + *kubeVersion}, ociimage.Spec{
			Files:      []ociimage.File{bin("/usr/local/bin/"+c, filepath.Join(*kubeBin, c))},
			Entrypoint: []string{"/usr/local/bin/" + c},
			Labels:     labels(c, *kubeVersion, "https://github.com/kubernetes/kubernetes"),
		}})
	}
	proxy, err := rootfsFiles(*rootfs, *proxyFiles)
	if err != nil {
		return err
	}
	for _, n := range []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"} {
		proxy = append(proxy, ociimage.File{Path: "/usr/sbin/" + n, Link: "xtables-legacy-multi"})
	}
	images = append(images,
		image{"kube-proxy", []string{"registry.k8s.io/kube-proxy:" + *kubeVersion}, ociimage.Spec{
			Files:      append([]ociimage.File{bin("/usr/local/bin/kube-proxy", filepath.Join(*kubeBin, "kube-proxy"))}, proxy...),
			Entrypoint: []string{"/usr/local/bin/kube-proxy"},
			Labels:     labels("kube-proxy", *kubeVersion, "https://github.com/kubernetes/kubernetes"),
		}},
		image{"pause", []string{"registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10.1"}, ociimage.Spec{
			Files: []ociimage.File{bin("/pause", *pause)}, Entrypoint: []string{"/pause"},
			Labels: labels("pause", "3.10.1", "https://github.com/kafscale/kafscale"),
		}},
		image{"etcd", []string{NodeRegistry + "/etcd:" + *etcdVersion}, ociimage.Spec{
			Files: []ociimage.File{bin("/usr/local/bin/etcd", *etcd)}, Entrypoint: []string{"/usr/local/bin/etcd"},
			Labels: labels("etcd", *etcdVersion, "https://github.com/etcd-io/etcd"),
		}},
		image{"coredns", []string{NodeRegistry + "/coredns:" + *corednsVersion}, ociimage.Spec{
			Files: []ociimage.File{bin("/coredns", *coredns)}, Entrypoint: []string{"/coredns"},
			Labels: labels("coredns", *corednsVersion, "https://github.com/coredns/coredns"),
		}},
		image{"agent", []string{NodeRegistry + "/agent:" + *agentTag}, ociimage.Spec{
			Files: []ociimage.File{bin("/agent", *agent)}, Entrypoint: []string{"/agent"},
			Labels: labels("kind node agent", *agentTag, "https://github.com/kafscale/kafscale"),
		}},
	)
	for _, im := range images {
		im.spec.Created, im.spec.Architecture, im.spec.User = rev.time, runtime.GOARCH, "0:0"
		img, err := ociimage.Build(im.spec)
		if err != nil {
			return fmt.Errorf("%s: %w", im.name, err)
		}
		if err := ociimage.WriteArchive(filepath.Join(*out, im.name+".tar"), img, im.refs...); err != nil {
			return err
		}
		fmt.Printf("%-24s %s\n", im.name+".tar", strings.Join(im.refs, " "))
	}
	return nil
}

// rootfsFiles turns the listed paths of rootfs into image files: regular files are copied,
// symbolic links kept, directories and documentation skipped.
func rootfsFiles(rootfs, list string) ([]ociimage.File, error) {
	f, err := os.Open(list)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	seen := map[string]bool{}
	var files []ociimage.File
	s := bufio.NewScanner(f)
	for s.Scan() {
		p := filepath.Clean(strings.TrimSpace(s.Text()))
		// Documentation is not needed, and build.sh removed it from the rootfs.
		if !filepath.IsAbs(p) || p == "/" || strings.HasPrefix(p, "/usr/share/") {
			continue
		}
		// Each path by its directory's real location: Debian's merged /usr makes /lib a
		// link to usr/lib, and an image layer cannot hold entries below a link.
		dir, err := filepath.EvalSymlinks(filepath.Join(rootfs, filepath.Dir(p)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", list, err)
		}
		rel, err := filepath.Rel(rootfs, dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			return nil, fmt.Errorf("%s: %s leads outside the rootfs", list, p)
		}
		p = filepath.Join("/", rel, filepath.Base(p))
		if seen[p] || strings.HasPrefix(p, "/usr/share/") {
			continue
		}
		seen[p] = true
		fi, err := os.Lstat(filepath.Join(rootfs, p))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", list, err)
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(filepath.Join(rootfs, p))
			if err != nil {
				return nil, err
			}
			files = append(files, ociimage.File{Path: p, Link: target})
		case fi.Mode().IsRegular():
			files = append(files, ociimage.File{Path: p, Source: filepath.Join(rootfs, p), Mode: int64(fi.Mode().Perm())})
		}
	}
	return files, s.Err()
}
