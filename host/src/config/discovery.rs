//! Discovery: a new folder under `components/` becomes a registered instance in
//! models.yaml.
//!
//! - A folder with a `component.wasm`: its kind comes from its exports; its `describe`
//!   says which config keys it needs. It is registered when they can all be filled (today:
//!   `weights` from the one `.onnx` file in the folder); otherwise it is a generic
//!   implementation for instances to reference, and is left alone.
//! - A folder with only an `.onnx` model: bound to the built-in `yolo` component when that
//!   component accepts the graph (Ultralytics-style output). A missing `classes.txt` is
//!   written from the model's `names` metadata, or as a template to fill in.
//!
//! The entry gets the next free port of `settings.port_range` and is inserted into
//! models.yaml without touching anything else (see [`crate::config::yaml_edit`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::config::yaml_edit::{insert_instance, write_atomic};
use crate::config::{check_name, InstanceSpec, Mentions, Settings};
use crate::runtime::kind::kind_of;
use crate::runtime::loaded::{describe, Loaded};
use crate::runtime::Runtime;

/// The built-in implementation that model-only folders bind to.
pub const GENERIC_DETECTOR: &str = "yolo";

/// Remembers which folder contents were already considered, so that a folder that cannot
/// be registered is not retried (and logged) on every scan, only when it changes.
#[derive(Default)]
pub struct Discovery {
    seen: HashMap<String, String>,
}

/// A folder's contents in short: file names and sizes.
fn fingerprint(dir: &Path) -> String {
    let mut entries: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            format!(
                "{}:{}",
                e.file_name().to_string_lossy(),
                e.metadata().map(|m| m.len()).unwrap_or(0)
            )
        })
        .collect();
    entries.sort();
    entries.join(",")
}

fn onnx_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx") && p.is_file())
        .collect();
    v.sort();
    v
}

impl Discovery {
    /// Look for unregistered folders and register them in `config_path`. Returns the names
    /// of the instances added.
    pub fn scan(&mut self, rt: &Runtime, settings: &Settings, config_path: &Path) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&settings.components_dir) else {
            return vec![];
        };
        let mut folders: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        folders.sort();
        let mut added = Vec::new();
        for dir in folders {
            let Some(folder) = dir.file_name().and_then(|n| n.to_str()).map(String::from) else {
                continue;
            };
            if folder.starts_with('.') || folder == "target" {
                continue;
            }
            let fp = fingerprint(&dir);
            if self.seen.get(&folder) == Some(&fp) {
                continue;
            }
            let text = std::fs::read_to_string(config_path).unwrap_or_default();
            let mentions = Mentions::read(&text);
            let onnx = onnx_files(&dir);
            let mentioned = |p: &PathBuf| {
                model_path(settings, p).is_ok_and(|r| mentions.config_values.contains(&r))
            };
            if mentions.implementations.contains(&folder) || onnx.iter().any(mentioned) {
                self.seen.insert(folder, fp);
                continue;
            }
            let wasm = dir.join("component.wasm");
            let plan = if wasm.is_file() {
                plan_component(rt, settings, &folder, &wasm, &onnx)
            } else if onnx.len() == 1 && !dir.join("Cargo.toml").exists() {
                plan_model_only(rt, settings, &folder, &onnx[0])
            } else {
                Err(None)
            };
            match plan {
                Ok(plan) => match register(settings, config_path, &folder, plan, &mentions) {
                    Ok(name) => added.push(name),
                    Err(e) => tracing::error!(folder = %dir.display(), "could not register: {e}"),
                },
                Err(Some(why)) => tracing::info!(folder = %dir.display(), "not registered: {why}"),
                Err(None) => {}
            }
            // Recompute: registration may have written classes.txt into the folder.
            self.seen.insert(folder, fingerprint(&dir));
        }
        added
    }
}

/// What to write for a new instance.
struct Plan {
    implementation: String,
    config: Vec<(String, String)>,
    origin: String,
}

pub(crate) fn temp_spec(
    settings: &Settings,
    name: &str,
    implementation: &str,
    graphs: HashMap<String, PathBuf>,
    config: Vec<(String, String)>,
) -> InstanceSpec {
    InstanceSpec {
        name: name.to_string(),
        implementation: implementation.to_string(),
        component: settings
            .components_dir
            .join(implementation)
            .join("component.wasm"),
        port: 0,
        config,
        graphs,
        classes: vec![],
        idle_timeout: settings.idle_timeout,
        max_queue: 1,
        inference_memory: settings.inference_memory,
        ort_threads: Some(1),
        backend: Default::default(),
        device: Default::default(),
        precision: Default::default(),
        requests_per_load: crate::nn::choose::DEFAULT_REQUESTS_PER_LOAD,
        replicas: 1,
        preload: false,
        display_name: name.to_string(),
        description: None,
    }
}

/// How models.yaml names a model file: relative to the models root, which it must lie under.
pub(crate) fn model_path(settings: &Settings, file: &Path) -> Result<String, String> {
    let root = settings
        .models_root
        .canonicalize()
        .map_err(|e| e.to_string())?;
    let file = file.canonicalize().map_err(|e| e.to_string())?;
    file.strip_prefix(&root)
        .map(|r| r.display().to_string())
        .map_err(|_| {
            format!(
                "{} lies outside the models root {}",
                file.display(),
                root.display()
            )
        })
}

fn plan_component(
    rt: &Runtime,
    settings: &Settings,
    folder: &str,
    wasm: &Path,
    onnx: &[PathBuf],
) -> Result<Plan, Option<String>> {
    let bytes = std::fs::read(wasm).map_err(|e| Some(e.to_string()))?;
    let kind = kind_of(&bytes).map_err(Some)?;
    let (_, info) = describe(
        rt,
        &temp_spec(settings, folder, folder, HashMap::new(), vec![]),
        settings,
    )
    .map_err(Some)?;
    let mut config = Vec::new();
    for need in &info.needs {
        match (need.as_str(), onnx) {
            ("weights", [one]) => config.push(("weights".to_string(), model_path(settings, one).map_err(Some)?)),
            _ => {
                return Err(Some(format!(
                    "a generic {kind} that needs `{need}`; reference it from models.yaml (implementation: {folder})"
                )))
            }
        }
    }
    Ok(Plan {
        implementation: folder.to_string(),
        config,
        origin: format!("{kind} component"),
    })
}

fn plan_model_only(
    rt: &Runtime,
    settings: &Settings,
    folder: &str,
    onnx: &Path,
) -> Result<Plan, Option<String>> {
    let rel = model_path(settings, onnx).map_err(Some)?;
    let graphs = HashMap::from([("weights".to_string(), onnx.to_path_buf())]);
    let spec = temp_spec(
        settings,
        folder,
        GENERIC_DETECTOR,
        graphs,
        vec![("weights".into(), rel.clone())],
    );
    // The generic component itself decides whether the graph fits (and reads its names).
    let (loaded, _) = Loaded::load(rt, &spec, settings, Default::default()).map_err(|e| {
        Some(format!(
            "{} does not fit the built-in {GENERIC_DETECTOR} detector: {e}",
            onnx.display()
        ))
    })?;
    let classes = onnx.with_file_name("classes.txt");
    if !classes.exists() {
        let names: Vec<&str> = loaded.info.labels.iter().map(|l| l.name.as_str()).collect();
        let generic = names
            .iter()
            .enumerate()
            .all(|(i, n)| *n == format!("class_{i}"));
        let header = if generic {
            format!("# Class names for {}, one per line, in the model's class order.\n# Generated: the model carries no names; replace each class_N.\n", rel)
        } else {
            format!(
                "# Class names for {}, read from the model's metadata.\n",
                rel
            )
        };
        let text = header + &names.join("\n") + "\n";
        if let Err(e) = std::fs::write(&classes, text) {
            tracing::warn!(path = %classes.display(), "could not write classes.txt: {e}");
        } else {
            tracing::info!(path = %classes.display(), generic, "wrote classes.txt");
        }
    }
    Ok(Plan {
        implementation: GENERIC_DETECTOR.to_string(),
        config: vec![("weights".into(), rel)],
        origin: format!("model-only folder bound to {GENERIC_DETECTOR}"),
    })
}

pub(crate) fn free_port(
    settings: &Settings,
    taken: &std::collections::HashSet<u16>,
) -> Option<u16> {
    (settings.port_range.0..=settings.port_range.1)
        .filter(|p| !taken.contains(p) && *p != settings.gateway_port)
        .find(|&p| std::net::TcpListener::bind((settings.bind, p)).is_ok())
}

fn register(
    settings: &Settings,
    config_path: &Path,
    folder: &str,
    plan: Plan,
    mentions: &Mentions,
) -> Result<String, String> {
    let mut name = folder.to_lowercase().replace(
        |c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'),
        "-",
    );
    if check_name(&name).is_err() {
        name = format!(
            "model-{}",
            name.trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        );
    }
    let base = name.clone();
    let mut n = 2;
    while mentions.names.contains(&name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    check_name(&name)?;
    let port =
        free_port(settings, &mentions.ports).ok_or("no free port left in settings.port_range")?;
    let mut lines = vec![
        format!(
            "{name}:  # discovered in components/{folder} ({})",
            plan.origin
        ),
        format!("  implementation: {}", plan.implementation),
        format!("  port: {port}"),
    ];
    if !plan.config.is_empty() {
        lines.push("  config:".into());
        for (k, v) in &plan.config {
            lines.push(format!(
                "    {k}: {}",
                serde_json::to_string(v).unwrap_or_default()
            ));
        }
    }
    write_entry(config_path, &name, folder, &lines)?;
    tracing::info!(instance = %name, port, implementation = %plan.implementation, file = %config_path.display(), "registered a discovered instance in models.yaml");
    Ok(name)
}

/// Insert the instance `name` (its entry as `lines`, relative to `models:`) into models.yaml,
/// re-reading the file right before writing so that an edit made meanwhile is kept, and
/// checking that the result still holds every entry that was there. Refuses when the file
/// already names `name` or uses `implementation`.
pub(crate) fn write_entry(
    config_path: &Path,
    name: &str,
    implementation: &str,
    lines: &[String],
) -> Result<(), String> {
    let current = std::fs::read_to_string(config_path)
        .map_err(|e| format!("{}: {e}", config_path.display()))?;
    let before = Mentions::read(&current);
    if before.names.contains(name) || before.implementations.contains(implementation) {
        return Err(format!(
            "models.yaml already mentions {name} or components/{implementation}"
        ));
    }
    let updated = insert_instance(&current, lines);
    let after = Mentions::read(&updated);
    if !after.names.contains(name) || !before.names.is_subset(&after.names) {
        return Err("the edited models.yaml would not parse as expected; left unchanged".into());
    }
    write_atomic(config_path, &updated)
        .map_err(|e| format!("writing {}: {e}", config_path.display()))
}
