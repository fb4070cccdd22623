#!/usr/bin/env bash
# Builds what the Kubernetes tests run against, from the Go module proxy:
# a real control plane, etcd (go.etcd.io/etcd/server/v3), kube-apiserver,
# kube-controller-manager and kubectl (k8s.io/kubernetes, its staging
# modules replaced by their published versions), and
# kubernetes-sigs/agent-sandbox's controller, with its CRDs, and a
# registry (distribution/distribution) for image push. They go to $1 (default ~/.cache/llm-runtime/k8s-bin), outside
# the repository; what is there, built from the same versions, is kept.
# About 30 minutes on two cores when nothing is cached.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
out=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/llm-runtime/k8s-bin}
KUBERNETES=v1.37.2 STAGING=v0.37.2 ETCD=v3.7.3 AGENT_SANDBOX=v1.0.1 DISTRIBUTION=v3.1.2
stamp="kubernetes $KUBERNETES (kube-apiserver kube-controller-manager kubectl) etcd $ETCD agent-sandbox $AGENT_SANDBOX registry $DISTRIBUTION"
cached "k8s test binaries" "$out" "$stamp" && exit 0
# What was built from another version than this one goes: it is built
# again below (what is there is kept only if its version is the same).
case "$old " in *"kubernetes $KUBERNETES "*) ;; *) rm -f "$out/kube-apiserver" "$out/kube-controller-manager" "$out/kubectl" ;; esac
case "$old " in *"etcd $ETCD "*) ;; *) rm -f "$out/etcd" ;; esac
case "$old " in *"agent-sandbox $AGENT_SANDBOX "*) ;; *) rm -rf "$out/agent-sandbox-controller" "$out/crds" ;; esac
case "$old " in *"registry $DISTRIBUTION "*) ;; *) rm -f "$out/registry" ;; esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CGO_ENABLED=0 GOFLAGS=-mod=mod
# kube-apiserver, kube-controller-manager (for its garbage collector) and
# kubectl: a module that requires k8s.io/kubernetes, whose own go.mod
# replaces its staging modules with directories.
missing=()
for b in kube-apiserver kube-controller-manager kubectl; do
  [ -x "$out/$b" ] || missing+=("$b")
done
if [ ${#missing[@]} -gt 0 ]; then
  build_k8s "$out" "$KUBERNETES" "$STAGING" "$work" "${missing[@]}"
fi
# etcd: its modules replace each other with directories too.
if ! [ -x "$out/etcd" ]; then
  mkdir "$work/etcd" && cd "$work/etcd"
  go mod init etcd-build >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@$ETCD"
  go build -trimpath -o "$out/etcd" go.etcd.io/etcd/server/v3
fi
# agent-sandbox: the controller and the CRDs of the same release.
if ! [ -x "$out/agent-sandbox-controller" ]; then
  GOFLAGS= GOBIN="$out" go install "sigs.k8s.io/agent-sandbox/cmd/agent-sandbox-controller@$AGENT_SANDBOX"
fi
# A registry (distribution), for image push to push to.
if ! [ -x "$out/registry" ]; then
  GOFLAGS= GOBIN="$out" go install "github.com/distribution/distribution/v3/cmd/registry@$DISTRIBUTION"
fi
dir=$(cd "$work" && GOFLAGS= go mod download -json "sigs.k8s.io/agent-sandbox@$AGENT_SANDBOX" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
mkdir -p "$out/crds"
cp "$dir"/k8s/crds/*.yaml "$out/crds/"
chmod -R u+w "$out/crds"
echo "$stamp" > "$out/versions"
echo "k8s test binaries: $out ($stamp), built"
