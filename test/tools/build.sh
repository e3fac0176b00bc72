#!/usr/bin/env bash
# Builds one test tool from its Go module into the cache outside the repository, keyed by the
# module version and the Go version, like test/control-plane/build.sh does for the control planes.
#   bash test/tools/build.sh NAME   (NAME is a directory of test/tools holding go.mod + go.sum,
#                                    whose `tool` directive names the command to build, or
#                                    a local main package)
#   bash test/tools/build.sh DIR    (DIR, a path with a slash, is such a directory elsewhere, e.g.
#                                    test/bench/go-peer; its base name names the binary and cache)
# An optional file NAME/ldflags adds linker flags (the string $VERSION in it becomes the version);
# an optional file NAME/tags holds build tags (e.g. promtool without the service-discovery plugins
# it never uses here: 7 min of CPU instead of 11.5 on a cold Go cache), and they are part of the
# cache key.
# Prints the binary's path on stdout (last line) and progress on stderr; reuses the cache.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
arg=${1:?usage: build.sh NAME|DIR (a directory of test/tools, or a path to a directory, with a go.mod)}
case "$arg" in
  */*) mod_dir=$(cd "$arg" && pwd) ;;
  *) mod_dir="$here/$arg" ;;
esac
name=$(basename "$mod_dir")
say() { printf '[tools:%s] %s\n' "$name" "$*" >&2; }
[ -f "$mod_dir/go.mod" ] || { say "no $mod_dir/go.mod"; exit 1; }

# The command to build is the go.mod's single `tool` line, and its module's version keys the cache;
# a go.mod without one is a local main package (NAME/*.go), keyed by a hash of the directory.
pkg=$(awk '$1=="tool"{print $2; exit}' "$mod_dir/go.mod")
if [ -n "$pkg" ]; then
  # The required module with the longest path that prefixes the package.
  version=$(awk -v pkg="$pkg" '
    $1=="require" && NF>=3 { p=$2; v=$3 } $1!="require" && NF>=2 && $2 ~ /^v[0-9]/ { p=$1; v=$2 }
    p!="" && (pkg==p || index(pkg, p "/")==1) && length(p)>best { best=length(p); ver=v }
    { p="" } END { print ver }' "$mod_dir/go.mod")
  [ -n "$version" ] || { say "$mod_dir/go.mod requires no module providing $pkg"; exit 1; }
  bin_name=$(basename "$pkg")
else
  pkg=.
  version=src-$(cd "$mod_dir" && cat $(ls | sort) | sha256sum | cut -c1-12)
  bin_name=$name
fi

command -v go >/dev/null || { say "go is not on PATH: install Go >= 1.25 (test tools are built from Go modules)"; exit 1; }
GO_VERSION=$(go env GOVERSION)
CACHE_ROOT=${MCSA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/multicluster-service-account}
tags=""
[ -f "$mod_dir/tags" ] && tags=$(tr -s ' \n' ',' < "$mod_dir/tags" | sed 's/^,//; s/,$//')
OUT="$CACHE_ROOT/tools/$name-$version${tags:+-$(printf '%s' "$tags" | sha256sum | cut -c1-8)}-$GO_VERSION"
bin="$OUT/$bin_name"

if [ -x "$bin" ]; then
  say "cached: $bin ($version, $GO_VERSION)"
  echo "$bin"
  exit 0
fi

mkdir -p "$OUT"
exec 9>"$OUT/.lock"
if ! flock -n 9; then
  say "another build holds $OUT/.lock; waiting for it"
  flock 9
fi
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi

ldflags=""
[ -f "$mod_dir/ldflags" ] && ldflags=$(sed "s/\$VERSION/$version/g" "$mod_dir/ldflags" | tr '\n' ' ')
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
start=$(date +%s)
say "building $pkg $version${tags:+ (tags $tags)} with $GO_VERSION into $OUT (first build takes a while; later runs reuse it)"
( exec 9>&-; while sleep 60; do say "  still building: $(( $(date +%s) - start ))s"; done ) &
ticker=$!
trap 'kill $ticker 2>/dev/null || true' EXIT
(cd "$mod_dir" && go mod download && go build -trimpath ${tags:+-tags "$tags"} -ldflags "-s -w $ldflags" -o "$bin.tmp" "$pkg") >&2 \
  || { say "FAILED building $pkg"; exit 1; }
mv "$bin.tmp" "$bin"
say "built in $(( $(date +%s) - start ))s ($(du -h "$bin" | cut -f1)): $bin"
echo "$bin"
