#!/usr/bin/env bash
# Builds the real control plane that the Kubernetes tests run against, from
# the Go module proxy: etcd (go.etcd.io/etcd/server/v3) and kube-apiserver
# and kubectl (k8s.io/kubernetes, its staging modules replaced by their
# published versions). The binaries go to $1 (default
# ~/.cache/llm-runtime/k8s-bin), outside the repository; a binary already
# there, built from the same versions, is kept. About 15 minutes on two
# cores when nothing is cached.
set -euo pipefail
out=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/llm-runtime/k8s-bin}
KUBERNETES=v1.37.2 STAGING=v0.37.2 ETCD=v3.7.3
stamp="kubernetes $KUBERNETES etcd $ETCD"
mkdir -p "$out"
if [ -x "$out/etcd" ] && [ -x "$out/kube-apiserver" ] && [ -x "$out/kubectl" ] && [ "$(cat "$out/versions" 2>/dev/null)" = "$stamp" ]; then
  echo "k8s test binaries: $out ($stamp), cached"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export GOFLAGS=-mod=mod CGO_ENABLED=0
go mod init k8s-test-binaries >/dev/null 2>&1
modfile=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
{
  echo "require k8s.io/kubernetes $KUBERNETES"
  echo "replace ("
  sed -n 's#^\t\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\t\1 => \1 '"$STAGING"'#p' "$modfile"
  echo ")"
} >> go.mod
go mod tidy >/dev/null 2>&1 || true
cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
go mod tidy
go build -trimpath -o "$out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
go build -trimpath -o "$out/kubectl" k8s.io/kubernetes/cmd/kubectl
GOFLAGS= go install "go.etcd.io/etcd/server/v3@$ETCD" 2>/dev/null && cp "$(go env GOPATH)/bin/server" "$out/etcd" || {
  mkdir etcd && cd etcd && go mod init etcd-build >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@$ETCD"
  go build -trimpath -o "$out/etcd" go.etcd.io/etcd/server/v3
}
echo "$stamp" > "$out/versions"
echo "k8s test binaries: $out ($stamp), built"
