#!/usr/bin/env bash
# Builds what a real Kubernetes node needs, for the Kubernetes tests' node
# (issue 28; kubetest does not run it yet): kubelet and kube-scheduler
# (k8s.io/kubernetes, its staging modules replaced by their published
# versions, as build-binaries.sh builds kube-apiserver), containerd, its
# runc shim and ctr, crictl, and kube-network-policies (SIG Network's
# NetworkPolicy agent, nftables and NFQUEUE: kube-router, the other one
# the proxy serves, has security flaws reported for its only version),
# from the Go module proxy; runc, the CNI plugins, ipset and conntrack come
# from Debian. They go to $1 (default ~/.cache/llm-runtime/k8s-node-bin),
# outside the repository; what is there, built from the same versions, is
# kept.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
out=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/llm-runtime/k8s-node-bin}
KUBERNETES=v1.37.2 STAGING=v0.37.2 CONTAINERD=v2.4.2 CRI_TOOLS=v1.37.0 KNP=v0.8.0
stamp="kubernetes $KUBERNETES (kubelet kube-scheduler) containerd $CONTAINERD cri-tools $CRI_TOOLS kube-network-policies $KNP"
cached "k8s node binaries" "$out" "$stamp" && exit 0
case "$old " in *"kubernetes $KUBERNETES "*) ;; *) rm -f "$out/kubelet" "$out/kube-scheduler" ;; esac
case "$old " in *"containerd $CONTAINERD "*) ;; *) rm -f "$out/containerd" "$out/containerd-shim-runc-v2" "$out/ctr" ;; esac
case "$old " in *"cri-tools $CRI_TOOLS "*) ;; *) rm -f "$out/crictl" ;; esac
case "$old " in *"kube-network-policies $KNP "*) ;; *) rm -f "$out/kube-network-policies" ;; esac
# Debian's: runc, the CNI plugins (bridge, host-local, loopback, portmap),
# and what kube-proxy-less pod networking and the policy agent call.
need=()
command -v runc >/dev/null || need+=(runc)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
command -v ipset >/dev/null || need+=(ipset)
command -v conntrack >/dev/null || need+=(conntrack)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${need[@]}"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CGO_ENABLED=0 GOFLAGS=-mod=mod
missing=()
for b in kubelet kube-scheduler; do
  [ -x "$out/$b" ] || missing+=("$b")
done
if [ ${#missing[@]} -gt 0 ]; then
  build_k8s "$out" "$KUBERNETES" "$STAGING" "$work" "${missing[@]}"
fi
for b in containerd containerd-shim-runc-v2 ctr; do
  if ! [ -x "$out/$b" ]; then
    GOFLAGS= GOBIN="$out" go install "github.com/containerd/containerd/v2/cmd/$b@$CONTAINERD"
  fi
done
if ! [ -x "$out/crictl" ]; then
  GOFLAGS= GOBIN="$out" go install "sigs.k8s.io/cri-tools/cmd/crictl@$CRI_TOOLS"
fi
if ! [ -x "$out/kube-network-policies" ]; then
  mkdir -p "$work/knp" && cd "$work/knp"
  go mod init knp-build >/dev/null 2>&1
  go get "sigs.k8s.io/kube-network-policies@$KNP"
  # Its main package moved between releases: the standard NetworkPolicy
  # agent is the first of these that builds.
  built=
  for pkg in cmd/kube-network-policies/standard cmd/kube-network-policies cmd; do
    if go build -trimpath -o "$out/kube-network-policies" "sigs.k8s.io/kube-network-policies/$pkg" 2>"$work/knp.err"; then
      built=$pkg
      break
    fi
  done
  [ -n "$built" ] || { cat "$work/knp.err"; exit 1; }
fi
echo "$stamp" > "$out/versions"
echo "k8s node binaries: $out ($stamp), built"
