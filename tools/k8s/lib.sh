# Sourced by the build scripts of tools/k8s.

# cached WHAT OUT STAMP: says so and succeeds when OUT holds what STAMP
# names (its file versions), else says what OUT held before, in $old.
cached() {
  mkdir -p "$2"
  old=$(cat "$2/versions" 2>/dev/null || true)
  if [ "$old" = "$3" ]; then
    echo "$1: $2 ($3), cached"
    return 0
  fi
  return 1
}

# build_k8s OUT KUBERNETES STAGING WORK BINARY...: builds each BINARY
# (k8s.io/kubernetes/cmd/BINARY) into OUT, from a module that requires
# k8s.io/kubernetes at KUBERNETES, whose own go.mod replaces its staging
# modules with directories: they are replaced here by their published
# versions, STAGING. The version the binaries report is KUBERNETES.
build_k8s() {
  local out=$1 kubernetes=$2 staging=$3 work=$4
  shift 4
  mkdir "$work/k8s" && cd "$work/k8s"
  go mod init k8s-test-binaries >/dev/null 2>&1
  local modfile
  modfile=$(go mod download -json "k8s.io/kubernetes@$kubernetes" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  {
    echo "require k8s.io/kubernetes $kubernetes"
    echo "replace ("
    sed -n 's#^\t\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\t\1 => \1 '"$staging"'#p' "$modfile"
    echo ")"
  } >> go.mod
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for b in "$@"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$b"; done
    printf ')\n'
  } > tools.go
  go mod tidy
  for b in "$@"; do
    go build -trimpath -ldflags "-X k8s.io/component-base/version.gitVersion=$kubernetes" -o "$out/$b" "k8s.io/kubernetes/cmd/$b"
  done
}
