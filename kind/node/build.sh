#!/usr/bin/env bash
# Builds the offline kind node image (`make kind-node-image`; docs/development.md, "The kind
# node image"): what kind's own node image holds, made here from Debian packages and Go
# source, because no image can be pulled on machines without internet.
#
#   1. a Debian bookworm rootfs (debootstrap, then apt-get with the pinned containerd, runc
#      and CNI plugins of NODE_DEBIAN_PACKAGES), kept as the tarball ROOTFS_CACHE and
#      reused while the package list and mirrors stay the same (ROOTFS_ONLY=1 stops there);
#   2. kind's own node files (entrypoint, containerd config, kubelet unit, kubeadm drop-in)
#      from the kind module in the Go module cache, as kind's base image Dockerfile lays
#      them out, with restrict_oom_score_adj (containerd in a container without
#      CAP_SYS_RESOURCE cannot lower a process' OOM score);
#   3. kubeadm, kubelet, kubectl (static, from tests/tools/kube-apiserver's module);
#   4. the control-plane and addon images (internal/tools/images node), imported into the
#      node's containerd at boot by kafscale-import-images.service, before the kubelet;
#      the CNI DaemonSet and StorageClass manifests kind applies;
#   5. the rootfs imported into podman as NODE_IMAGE.
#
# Needs root (debootstrap, chroot). Every input is named by the environment the Makefile
# passes; their hash is NODE_IMAGE's tag, so a changed input builds a new image.
set -euo pipefail

for v in NODE_IMAGE WORK ROOTFS_CACHE KIND_MODULE KUBE_BIN KUBE_VERSION ETCD_BIN ETCD_VERSION COREDNS_VERSION \
  DEBIAN_MIRROR DEBIAN_SECURITY_MIRROR NODE_DEBIAN_PACKAGES REPO; do
  if [ -z "${!v:-}" ]; then echo "kind/node/build.sh: $v is not set (run it through make kind-node-image)" >&2; exit 2; fi
done
GO=${GO:-go}
# Everything below writes under WORK (and, with chroot, into it): never the host's root.
case $WORK in /?*/*) ;; *) echo "kind/node/build.sh: WORK must be an absolute directory below /, not $WORK" >&2; exit 2 ;; esac
root=$WORK/rootfs
files=$KIND_MODULE/images/base/files
here=$REPO/kind/node
step() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*"; }

umount_all() { for m in dev/pts dev proc sys; do umount "$root/$m" 2>/dev/null || true; done; }
trap umount_all EXIT
rm -rf "$WORK"
mkdir -p "$WORK/bin" "$WORK/images"

if [ -f "$ROOTFS_CACHE" ]; then
  step "1/5 Debian rootfs from $ROOTFS_CACHE"
  mkdir -p "$root" && tar -C "$root" -xpf "$ROOTFS_CACHE"
else
  step "1/5 Debian bookworm rootfs (debootstrap)"
  debootstrap --variant=minbase bookworm "$root" "$DEBIAN_MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -20 "$WORK/debootstrap.log"; exit 1; }
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s bookworm-security main\n' \
    "$DEBIAN_MIRROR" "$DEBIAN_MIRROR" "$DEBIAN_SECURITY_MIRROR" >"$root/etc/apt/sources.list"
  # Services must not start inside the chroot while packages install.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod 0755 "$root/usr/sbin/policy-rc.d"
  for m in proc sys dev dev/pts; do mount --bind "/$m" "$root/$m"; done
  step "1/5 apt-get install $NODE_DEBIAN_PACKAGES"
  # shellcheck disable=SC2086 # the package list is words
  chroot "$root" /bin/sh -ec "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $NODE_DEBIAN_PACKAGES" \
    >"$WORK/apt.log" 2>&1 || { tail -30 "$WORK/apt.log"; exit 1; }
  chroot "$root" apt-get clean
  umount_all
  rm -rf "$root"/var/lib/apt/lists/* "$root/usr/sbin/policy-rc.d" "$root"/usr/share/doc/* "$root"/usr/share/man/*
  # The rootfs so far depends only on the package list and the mirrors: kept for the next
  # build (the Makefile names ROOTFS_CACHE by their hash), it saves debootstrap and apt.
  mkdir -p "$(dirname "$ROOTFS_CACHE")"
  tar -C "$root" --numeric-owner -cpf "$ROOTFS_CACHE.tmp" . && mv "$ROOTFS_CACHE.tmp" "$ROOTFS_CACHE"
fi
if [ -n "${ROOTFS_ONLY:-}" ]; then
  rm -rf "$WORK"
  step "done: $ROOTFS_CACHE"
  exit 0
fi

step "2/5 kind's node files ($KIND_MODULE)"
install -m 0755 "$files/usr/local/bin/entrypoint" "$root/usr/local/bin/entrypoint"
mkdir -p "$root/kind/bin" "$root/kind/manifests" "$root/etc/systemd/system/kubelet.service.d" "$root/etc/kubernetes/manifests"
install -m 0644 "$files/kind/README.txt" "$root/kind/"
install -m 0755 "$files"/kind/bin/* "$root/kind/bin/"
install -m 0644 "$files/etc/crictl.yaml" "$root/etc/"
install -m 0644 -D "$files/etc/containerd/config.toml" "$root/etc/containerd/config.toml"
install -m 0644 "$files/etc/default/kubelet" "$root/etc/default/kubelet"
install -m 0644 "$files"/etc/sysctl.d/* "$root/etc/sysctl.d/"
for u in kubelet.service kubelet.slice containerd.service undo-mount-hacks.service; do
  install -m 0644 "$files/etc/systemd/system/$u" "$root/etc/systemd/system/$u"
done
install -m 0644 "$files"/etc/systemd/system/kubelet.service.d/* "$root/etc/systemd/system/kubelet.service.d/"
install -m 0644 "$here/files/kafscale-import-images.service" "$root/etc/systemd/system/"
# kind's units and config name its own builds' paths; Debian installs elsewhere.
ln -sf /usr/bin/containerd "$root/usr/local/bin/containerd"
mkdir -p "$root/opt/cni" && ln -sfn /usr/lib/cni "$root/opt/cni/bin"
sed -i 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' "$root/etc/containerd/config.toml"
grep -q 'restrict_oom_score_adj = true' "$root/etc/containerd/config.toml"
chroot "$root" /bin/sh -ec '
  ctr oci spec | jq ".hooks.createContainer[.hooks.createContainer| length] |= . + {\"path\": \"/kind/bin/mount-product-files.sh\"}" | jq "del(.process.rlimits)" > /etc/containerd/cri-base.json
  find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
  rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* /lib/systemd/system/local-fs.target.wants/*
  rm -f /lib/systemd/system/sockets.target.wants/*udev* /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
  echo ReadKMsg=no >> /etc/systemd/journald.conf
  ln -sf /usr/lib/systemd/systemd /sbin/init
  systemctl enable kubelet.service containerd.service undo-mount-hacks.service kafscale-import-images.service
  systemctl mask systemd-binfmt.service'

step "3/5 kubeadm, kubelet, kubectl $KUBE_VERSION"
for b in kubeadm kubelet kubectl; do install -m 0755 "$KUBE_BIN/$b" "$root/usr/bin/$b"; done
echo "$KUBE_VERSION" >"$root/kind/version"

step "4/5 images: build pause, CoreDNS $COREDNS_VERSION, node agent"
(cd "$here" && for c in pause coredns agent; do
  CGO_ENABLED=0 "$GO" build -trimpath -buildvcs=false -ldflags "-s -w -buildid=" -o "$WORK/bin/$c" "./$c"
done)
# kube-proxy's iptables (legacy and nft) with the libraries they load.
chroot "$root" dpkg-query -L iptables libxtables12 libip4tc2 libip6tc2 libnftnl11 libmnl0 \
  libnetfilter-conntrack3 libnfnetlink0 conntrack libc6 >"$WORK/kube-proxy-files"
echo /etc/ld.so.cache >>"$WORK/kube-proxy-files"
agent_tag=${NODE_IMAGE##*:}
(cd "$REPO" && "$GO" run ./internal/tools/images node -out "$WORK/images" -rootfs "$root" \
  -kube-bin "$KUBE_BIN" -kube-version "$KUBE_VERSION" -kube-proxy-files "$WORK/kube-proxy-files" \
  -etcd "$ETCD_BIN" -etcd-version "$ETCD_VERSION" -coredns "$WORK/bin/coredns" -coredns-version "$COREDNS_VERSION" \
  -pause "$WORK/bin/pause" -agent "$WORK/bin/agent" -agent-tag "$agent_tag")
mkdir -p "$root/kind/images"
cp "$WORK"/images/*.tar "$root/kind/images/"
sed "s#@AGENT_IMAGE@#ghcr.io/kafscale/kind-node/agent:$agent_tag#" "$here/default-cni.yaml" >"$root/kind/manifests/default-cni.yaml"
install -m 0644 "$here/default-storage.yaml" "$root/kind/manifests/default-storage.yaml"

step "5/5 podman import $NODE_IMAGE"
umount_all
tar -C "$root" --numeric-owner -cf - . | podman import \
  --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' \
  --change 'ENV container=docker' --change 'STOPSIGNAL SIGRTMIN+3' \
  - "$NODE_IMAGE" >/dev/null
rm -rf "$WORK"
step "done: $NODE_IMAGE"
