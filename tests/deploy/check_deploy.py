#!/usr/bin/env python3
"""check_deploy.py DEPLOY_DIR -- checks the Kubernetes manifests and the systemd unit under
DEPLOY_DIR against what docs/operations.md promises (no kubeconform here: PyYAML loads the
files and each requirement is checked by name). Prints one line per problem; exit 1 if any.
"""
import os
import re
import sys

import yaml


def duration_s(s):
    """'30s', '1m30s', '500ms' -> seconds (float), as config/units.c reads durations."""
    total, pos = 0.0, 0
    for m in re.finditer(r"(\d+)(ms|s|m|h|d)", s):
        if m.start() != pos:
            break
        pos = m.end()
        total += int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    if pos != len(s) or not s:
        raise ValueError(f"bad duration {s!r}")
    return total


class Checker:
    def __init__(self, root):
        self.root = root
        self.problems = []

    def need(self, cond, what):
        if not cond:
            self.problems.append(what)
        return cond

    def load(self, rel):
        with open(os.path.join(self.root, rel)) as f:
            return [d for d in yaml.safe_load_all(f) if d is not None]

    # ---- kubernetes ----------------------------------------------------------------------

    def kubernetes(self):
        k = os.path.join("kubernetes")
        kust = self.load(os.path.join(k, "kustomization.yaml"))[0]
        docs = []
        for r in kust.get("resources", []):
            if self.need(os.path.exists(os.path.join(self.root, k, r)), f"kustomization: missing resource {r}"):
                docs += self.load(os.path.join(k, r))
        by_kind = {}
        for d in docs:
            by_kind.setdefault(d.get("kind"), []).append(d)
        gens = {}
        for g in kust.get("configMapGenerator", []) + kust.get("secretGenerator", []):
            gens[g["name"]] = g
            for f in g.get("files", []):
                f = f.split("=", 1)[-1]
                self.need(os.path.exists(os.path.join(self.root, k, f)), f"kustomization: {g['name']}: missing file {f}")
        self.need(kust.get("namespace") == "aip-system", "kustomization: namespace aip-system")
        self.need("aip-gateway-config" in gens, "kustomization: configMapGenerator aip-gateway-config")
        self.need("aip-policies" in gens, "kustomization: secretGenerator aip-policies")

        gw = yaml.safe_load(open(os.path.join(self.root, k, "gateway.yaml")))
        grace = duration_s(gw.get("shutdown_grace", "30s"))
        self.need(gw["admin"]["listen"].startswith("0.0.0.0:"),
                  "gateway.yaml: admin.listen must be 0.0.0.0 in a pod (probes come from the kubelet)")

        deps = by_kind.get("Deployment", [])
        if not self.need(len(deps) == 1, "one Deployment"):
            return
        dep = deps[0]
        pod = dep["spec"]["template"]
        spec = pod["spec"]
        labels = pod["metadata"]["labels"]
        self.need(dep["spec"]["selector"]["matchLabels"].items() <= labels.items(), "Deployment: selector matches the pod labels")
        self.need(dep["spec"].get("replicas", 1) >= 2, "Deployment: replicas >= 2 for HA")
        psc = spec.get("securityContext", {})
        self.need(psc.get("runAsNonRoot") is True, "pod: securityContext.runAsNonRoot")
        self.need(psc.get("fsGroup") is not None, "pod: fsGroup (the non-root user reads the 0400 Secret through it)")
        self.need(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "pod: seccompProfile RuntimeDefault")

        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec["containers"]:
            sc = c.get("securityContext", {})
            n = c["name"]
            self.need(sc.get("readOnlyRootFilesystem") is True, f"{n}: readOnlyRootFilesystem")
            self.need(sc.get("allowPrivilegeEscalation") is False, f"{n}: allowPrivilegeEscalation false")
            self.need("ALL" in ((sc.get("capabilities") or {}).get("drop") or []), f"{n}: capabilities drop ALL")
            self.need(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"{n}: runAsNonRoot")
            self.need("limits" in c.get("resources", {}), f"{n}: resource limits")
        aip = next((c for c in spec["containers"] if c["name"] == "aip"), None)
        if not self.need(aip is not None, "a container named aip"):
            return
        ports = {p["name"]: p["containerPort"] for p in aip.get("ports", [])}
        self.need(ports.get("admin") == 9091, "aip: port admin 9091")
        self.need(str(ports.get("mcp")) == gw["listen"].rsplit(":", 1)[1], "aip: port mcp = gateway.yaml listen port")
        self.need(str(ports.get("admin")) == gw["admin"]["listen"].rsplit(":", 1)[1], "aip: port admin = gateway.yaml admin.listen port")

        def probe(name, path):
            p = aip.get(name, {}).get("httpGet", {})
            port = ports.get(p.get("port"), p.get("port"))
            self.need(p.get("path") == path and port == 9091, f"aip: {name} GET {path} on 9091")
        probe("livenessProbe", "/healthz")
        probe("readinessProbe", "/readyz")

        argv = aip.get("command", []) + aip.get("args", [])
        cfg_path = argv[argv.index("--config") + 1] if "--config" in argv else None
        self.need("serve" in argv and cfg_path, "aip: runs `aip serve --config FILE`")
        mounts = {m["mountPath"]: m for m in aip.get("volumeMounts", [])}
        cm = mounts.get(cfg_path) or mounts.get(os.path.dirname(cfg_path or "/"))
        if self.need(cm is not None, f"aip: {cfg_path} is mounted"):
            v = volumes.get(cm["name"], {})
            self.need(v.get("configMap", {}).get("name") == "aip-gateway-config", "config comes from ConfigMap aip-gateway-config")
            self.need(cm.get("readOnly") is True, "config mount readOnly")
        # every policy named in gateway.yaml lands on the read-only 0400 Secret mount
        for a in gw["agents"]:
            pol = os.path.normpath(os.path.join(os.path.dirname(cfg_path or "/"), a["policy"]))
            m = mounts.get(os.path.dirname(pol))
            if not self.need(m is not None, f"policy {pol} of agent {a['name']} is on a mount"):
                continue
            sec = volumes.get(m["name"], {}).get("secret", {})
            self.need(sec.get("secretName") == "aip-policies", f"{pol}: from Secret aip-policies")
            self.need(sec.get("defaultMode") == 0o400, f"{pol}: Secret defaultMode 0400")
            self.need(m.get("readOnly") is True, f"{pol}: mounted readOnly")
            key = os.path.basename(pol)
            self.need(any(os.path.basename(f.split("=", 1)[0]) == key for f in gens.get("aip-policies", {}).get("files", [])),
                      f"{pol}: a file of secretGenerator aip-policies")
        for p in (gw["store"]["path"], gw["audit"]["path"]):
            d = os.path.dirname(p)
            m = mounts.get(d)
            self.need(m is not None and "emptyDir" in volumes.get(m["name"], {}) or
                      m is not None and "persistentVolumeClaim" in volumes.get(m["name"], {}),
                      f"{d} (for {p}) is a writable volume")

        pre = aip.get("lifecycle", {}).get("preStop", {})
        pre_s = pre.get("sleep", {}).get("seconds")
        if pre_s is None and "exec" in pre:
            cmd = pre["exec"].get("command", [])
            pre_s = int(cmd[-1]) if cmd and cmd[-1].isdigit() else None
        self.need(pre_s is not None and pre_s > 0, "aip: a preStop pause for the load balancers")
        tgp = spec.get("terminationGracePeriodSeconds", 30)
        self.need(tgp > (pre_s or 0) + grace,
                  f"terminationGracePeriodSeconds {tgp} > preStop {pre_s} + shutdown_grace {grace:g}")

        svcs = by_kind.get("Service", [])
        self.need(any(p.get("targetPort") in ("mcp", ports.get("mcp")) for s in svcs for p in s["spec"]["ports"]),
                  "a Service for the mcp port")
        for s in svcs:
            self.need(s["spec"]["selector"].items() <= labels.items(), f"Service {s['metadata']['name']}: selector matches")
            for p in s["spec"]["ports"]:
                self.need(p.get("targetPort") in ports or p.get("targetPort") in ports.values(),
                          f"Service {s['metadata']['name']}: targetPort {p.get('targetPort')} exists")
                if p.get("targetPort") in ("mcp", ports.get("mcp")):
                    self.need(s["spec"].get("sessionAffinity") == "ClientIP",
                              "mcp Service: sessionAffinity ClientIP (sessions live in one pod)")
        pdbs = by_kind.get("PodDisruptionBudget", [])
        if self.need(len(pdbs) == 1, "one PodDisruptionBudget"):
            self.need(pdbs[0]["spec"]["selector"]["matchLabels"].items() <= labels.items(), "PDB: selector matches")
            self.need("maxUnavailable" in pdbs[0]["spec"] or "minAvailable" in pdbs[0]["spec"], "PDB: a budget")

    # ---- systemd -------------------------------------------------------------------------

    def systemd(self):
        lines = open(os.path.join(self.root, "systemd", "aip.service")).read().splitlines()
        kv = {}
        for ln in lines:
            if "=" in ln and not ln.startswith("#"):
                key, val = ln.split("=", 1)
                kv[key.strip()] = val.strip()
        want = {
            "User": "aip", "Group": "aip", "ProtectSystem": "strict", "NoNewPrivileges": "yes",
            "PrivateTmp": "yes", "CapabilityBoundingSet": "", "KillSignal": "SIGTERM",
            "ExecReload": "/bin/kill -HUP $MAINPID", "SystemCallFilter": "@system-service",
            "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
            "ReadWritePaths": "/var/lib/aip /var/log/aip",
        }
        for key, val in want.items():
            self.need(kv.get(key) == val, f"aip.service: {key}={val} (has {kv.get(key)!r})")
        self.need(kv.get("ProtectHome") in ("yes", "true", "read-only", "tmpfs"), "aip.service: ProtectHome")
        self.need(kv.get("ExecStart", "").split()[1:2] == ["serve"], "aip.service: ExecStart runs aip serve")
        gw = yaml.safe_load(open(os.path.join(self.root, "kubernetes", "gateway.yaml")))
        grace = duration_s(gw.get("shutdown_grace", "30s"))
        stop = duration_s(kv.get("TimeoutStopSec", "90s"))
        self.need(stop > grace, f"aip.service: TimeoutStopSec {stop:g}s > shutdown_grace {grace:g}s")


def main():
    c = Checker(sys.argv[1] if len(sys.argv) > 1 else "deploy")
    for part in (c.kubernetes, c.systemd):
        try:
            part()
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OSError, yaml.YAMLError) as e:
            c.problems.append(f"{part.__name__}: cannot read: {type(e).__name__}: {e}")
    for p in c.problems:
        print(f"deploy check: {p}", file=sys.stderr)
    if not c.problems:
        print("deploy check: kubernetes manifests and systemd unit ok")
    return 1 if c.problems else 0


if __name__ == "__main__":
    sys.exit(main())
