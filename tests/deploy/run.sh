#!/usr/bin/env bash
# Tests of the deployment files under deploy/ (docs/operations.md):
#   - Prometheus rules: promtool check rules + promtool test rules (alerts that must fire, and
#     series that must not fire them);
#   - the systemd unit: systemd-analyze verify, when systemd-analyze works here;
#   - the Kubernetes manifests and the unit's settings: tests/deploy/check_deploy.py (PyYAML),
#     and that it rejects copies with one requirement broken each (so it can fail);
#   - the production example config and policy pass `aip check`, as shipped and in the host
#     variant docs/operations.md installs (listeners on 127.0.0.1).
# Env: AIP_BUILD_DIR (default build) holds the aip binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
AIP="$ROOT/${AIP_BUILD_DIR:-build}/aip"
[[ ${AIP_BUILD_DIR:-} == /* ]] && AIP="$AIP_BUILD_DIR/aip"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/aip-deploy-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
[[ -x $AIP ]] || { echo "deploy tests: missing $AIP (build first)" >&2; exit 1; }

# PyYAML: Debian's python3-yaml (scripts/setup.sh) is for /usr/bin/python3; another python3
# first in PATH may not have it.
PY=
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import yaml' 2>/dev/null; then PY=$p; break; fi
done
[[ -n $PY ]] || { echo "deploy tests: no python3 with PyYAML (apt-get install python3-yaml)" >&2; exit 1; }

echo "== deploy: prometheus rules"
promtool check rules deploy/prometheus/alerts.yaml
(cd deploy/prometheus && promtool test rules alerts.test.yaml)
# the PrometheusRule that docs/operations.md builds from the same file carries the same groups
{ printf 'apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: aip-alerts\n  namespace: aip-system\nspec:\n'
  sed 's/^/  /' deploy/prometheus/alerts.yaml; } >"$TMP/prometheusrule.yaml"
"$PY" -c '
import sys, yaml
rule = yaml.safe_load(open(sys.argv[1]))
alerts = yaml.safe_load(open("deploy/prometheus/alerts.yaml"))
assert rule["kind"] == "PrometheusRule" and rule["spec"]["groups"] == alerts["groups"], "PrometheusRule differs"
print("PrometheusRule: same groups as alerts.yaml")' "$TMP/prometheusrule.yaml"

echo "== deploy: systemd unit"
# verify wants ExecStart to exist: point it at the build's binary; any message is a failure
# (unknown keys and bad values are only warnings with exit status 0).
probe="$TMP/probe.service"
printf '[Service]\nExecStart=/bin/true\n' >"$probe"
if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP systemd-analyze verify: systemd-analyze is not installed"
elif ! out=$(systemd-analyze verify "$probe" 2>&1) || [[ -n $out ]]; then
  echo "SKIP systemd-analyze verify: it does not work in this environment: ${out:-no output}"
else
  sed "s|/usr/local/bin/aip|$AIP|g" deploy/systemd/aip.service >"$TMP/aip.service"
  out=$(systemd-analyze verify "$TMP/aip.service" 2>&1) || { echo "$out" >&2; exit 1; }
  [[ -z $out ]] || { echo "systemd-analyze verify deploy/systemd/aip.service:" >&2; echo "$out" >&2; exit 1; }
  echo "systemd-analyze verify: ok"
  # and it does catch a broken unit
  sed 's/^ProtectSystem=strict/ProtectSystm=strict/' "$TMP/aip.service" >"$TMP/bad.service"
  [[ -n $(systemd-analyze verify "$TMP/bad.service" 2>&1) ]] || { echo "systemd-analyze missed a typo" >&2; exit 1; }
fi

echo "== deploy: kubernetes manifests and unit settings"
"$PY" tests/deploy/check_deploy.py deploy
# one broken requirement per copy: the checker must reject each
mutants=(
  "kubernetes/deployment.yaml|s/defaultMode: 0400/defaultMode: 0644/"
  "kubernetes/deployment.yaml|0,/readOnlyRootFilesystem: true/s//readOnlyRootFilesystem: false/"
  "kubernetes/deployment.yaml|s/terminationGracePeriodSeconds: 60/terminationGracePeriodSeconds: 35/"
  "kubernetes/deployment.yaml|s|path: /readyz|path: /healthz|"
  "kubernetes/deployment.yaml|s/runAsNonRoot: true/runAsNonRoot: false/"
  "kubernetes/deployment.yaml|/drop: \\[\"ALL\"\\]/d"
  "kubernetes/gateway.yaml|s/listen: \"0.0.0.0:9091\"/listen: \"127.0.0.1:9091\"/"
  "kubernetes/service.yaml|/sessionAffinity: ClientIP/d"
  "kubernetes/pdb.yaml|s/app.kubernetes.io\\/name: aip-gateway/app: other/"
  "systemd/aip.service|s/^TimeoutStopSec=.*/TimeoutStopSec=20s/"
  "systemd/aip.service|s/^CapabilityBoundingSet=$/CapabilityBoundingSet=CAP_NET_ADMIN/"
)
for m in "${mutants[@]}"; do
  file=${m%%|*} expr=${m#*|}
  rm -rf "$TMP/mut" && cp -r deploy "$TMP/mut"
  sed -i "$expr" "$TMP/mut/$file"
  if cmp -s "deploy/$file" "$TMP/mut/$file"; then echo "mutant did not apply: $m" >&2; exit 1; fi
  if "$PY" tests/deploy/check_deploy.py "$TMP/mut" >/dev/null 2>&1; then
    echo "deploy check accepted a broken copy: $m" >&2
    exit 1
  fi
done
echo "deploy check: rejects ${#mutants[@]} broken copies"

echo "== deploy: production example config"
"$AIP" check --config deploy/kubernetes/gateway.yaml
"$AIP" check --policy deploy/kubernetes/policies/production-agent.yaml
# the host variant of docs/operations.md: same files, listeners on loopback
mkdir -p "$TMP/etc-aip"
cp -r deploy/kubernetes/policies "$TMP/etc-aip/"
sed 's/"0\.0\.0\.0:/"127.0.0.1:/' deploy/kubernetes/gateway.yaml >"$TMP/etc-aip/gateway.yaml"
grep -q '"127.0.0.1:9091"' "$TMP/etc-aip/gateway.yaml"
"$AIP" check --config "$TMP/etc-aip/gateway.yaml"
echo "== deploy tests passed"
