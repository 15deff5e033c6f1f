//! `host add COMPONENT.wasm --name NAME`: install a built component into
//! `components/NAME/` and register an instance of it in models.yaml, after checking that
//! this host can serve it and that it asks for nothing the sandbox does not grant.
//!
//! The checks, in order (the first failure refuses, with its reason): the file's size
//! against `settings.max_component_mb`; the kind it exports and the contract version
//! ([`kind_of`]); its imports ([`Imports`]); its `describe`, run in a throwaway instance
//! under the usual time and memory limits; the config keys it says it needs. Nothing is
//! written until all pass: the component and its weights are staged in a hidden folder,
//! the entry goes into models.yaml (format-preserving, as discovery writes), then the folder
//! is renamed into place, so a running host sees a complete instance.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::config::discovery::{free_port, model_path, temp_spec, write_entry};
use crate::config::{check_name, Mentions, Settings};
use crate::cvat::labels::ModelInfo;
use crate::runtime::kind::{kind_of, Kind};
use crate::runtime::loaded::describe;
use crate::runtime::sandbox::Imports;
use crate::runtime::Runtime;

/// What to install.
#[derive(Debug, Clone, Default)]
pub struct AddRequest {
    /// The built component.
    pub wasm: PathBuf,
    /// Instance name, also the folder under `components/`.
    pub name: String,
    /// Graph name (config key) → model file; `FILE` alone means key `weights`.
    pub weights: Vec<(String, PathBuf)>,
    /// More `config` entries, handed to the component as text.
    pub config: Vec<(String, String)>,
    /// The instance's port (default: the next free one of `settings.port_range`).
    pub port: Option<u16>,
    /// Class names in the model's class order (`classes:`), for components that take their
    /// labels from the instance rather than naming them.
    pub classes: Vec<String>,
}

impl AddRequest {
    /// Parse a `--weights` argument: `FILE` or `KEY=FILE`.
    pub fn parse_weights(arg: &str) -> (String, PathBuf) {
        match arg.split_once('=') {
            Some((k, f)) if !k.is_empty() && !k.contains('/') => (k.to_string(), f.into()),
            _ => ("weights".to_string(), arg.into()),
        }
    }

    /// Parse a `--config` argument: `KEY=VALUE`.
    pub fn parse_config(arg: &str) -> Result<(String, String), String> {
        match arg.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(format!("--config {arg}: expected KEY=VALUE")),
        }
    }
}

/// What was installed.
#[derive(Debug)]
pub struct Added {
    pub name: String,
    pub kind: Kind,
    pub port: u16,
    pub dir: PathBuf,
    pub bytes: u64,
    pub imports: Imports,
    pub info: ModelInfo,
    /// Config key → path as written in models.yaml.
    pub graphs: Vec<(String, String)>,
}

/// Check `req` and install it under `settings.components_dir`, registering the instance in
/// `config_path`. On refusal nothing is left behind.
pub fn add(
    rt: &Runtime,
    settings: &Settings,
    config_path: &Path,
    req: &AddRequest,
) -> Result<Added, String> {
    let name = req.name.as_str();
    check_name(name).map_err(|e| format!("--name: {e}"))?;
    if name.starts_with('.') {
        return Err(format!("--name {name}: may not start with '.'"));
    }
    let dir = settings.components_dir.join(name);
    if dir.exists() {
        return Err(format!("{} already exists", dir.display()));
    }
    let text = std::fs::read_to_string(config_path)
        .map_err(|e| format!("{}: {e}", config_path.display()))?;
    let mentions = Mentions::read(&text);
    if mentions.names.contains(name) || mentions.implementations.contains(name) {
        return Err(format!(
            "{} already has an instance or implementation named {name}",
            config_path.display()
        ));
    }

    let wasm = std::fs::read(&req.wasm).map_err(|e| format!("{}: {e}", req.wasm.display()))?;
    let bytes = wasm.len() as u64;
    if bytes > settings.max_component_bytes {
        return Err(format!(
            "{} is {:.1} MB, over the limit of {:.1} MB (settings.max_component_mb)",
            req.wasm.display(),
            bytes as f64 / 1e6,
            settings.max_component_bytes as f64 / 1e6
        ));
    }
    let kind = kind_of(&wasm).map_err(|e| format!("{}: {e}", req.wasm.display()))?;
    let imports = Imports::of(&wasm)?;
    imports
        .check()
        .map_err(|e| format!("{}: {e}", req.wasm.display()))?;

    // Stage everything in a hidden folder (discovery and the watcher skip dot-folders).
    let staging = settings
        .components_dir
        .join(format!(".{name}.adding-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    let result = stage_and_check(rt, settings, req, &staging, &wasm, kind).and_then(
        |(info, graphs, config)| {
            let port = match req.port {
                Some(p) => p,
                None => free_port(settings, &mentions.ports)
                    .ok_or("no free port left in settings.port_range")?,
            };
            let mut lines = vec![
                format!("{name}:  # added by `host add` ({kind} component)"),
                format!("  implementation: {name}"),
                format!("  port: {port}"),
            ];
            if !info.description.is_empty() {
                lines.push(format!(
                    "  description: {}",
                    serde_json::to_string(&info.description).unwrap_or_default()
                ));
            }
            if !req.classes.is_empty() {
                let names: Vec<String> = req
                    .classes
                    .iter()
                    .map(|c| serde_json::to_string(c).unwrap_or_default())
                    .collect();
                lines.push(format!("  classes: [{}]", names.join(", ")));
            }
            if !config.is_empty() {
                lines.push("  config:".into());
                for (k, v) in &config {
                    lines.push(format!(
                        "    {k}: {}",
                        serde_json::to_string(v).unwrap_or_default()
                    ));
                }
            }
            write_entry(config_path, name, name, &lines)?;
            std::fs::rename(&staging, &dir)
                .map_err(|e| format!("moving {} into place: {e}", staging.display()))?;
            Ok(Added {
                name: name.to_string(),
                kind,
                port,
                dir: dir.clone(),
                bytes,
                imports: imports.clone(),
                info,
                graphs,
            })
        },
    );
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

type Staged = (ModelInfo, Vec<(String, String)>, Vec<(String, String)>);

/// Copy the component and weights into `staging`, run `describe` there and check its needs.
/// Returns the component's info, the graphs (key, path in models.yaml) and the whole config.
fn stage_and_check(
    rt: &Runtime,
    settings: &Settings,
    req: &AddRequest,
    staging: &Path,
    wasm: &[u8],
    kind: Kind,
) -> Result<Staged, String> {
    let name = req.name.as_str();
    std::fs::write(staging.join("component.wasm"), wasm)
        .map_err(|e| format!("{}: {e}", staging.display()))?;
    let mut graphs = HashMap::new();
    let mut graph_config = Vec::new();
    for (key, file) in &req.weights {
        if !file.is_file() {
            return Err(format!("--weights {key}={}: no such file", file.display()));
        }
        let Some(file_name) = file
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| n.ends_with(".onnx"))
        else {
            return Err(format!(
                "--weights {key}={}: an .onnx model file is expected",
                file.display()
            ));
        };
        let staged = staging.join(file_name);
        if staged.exists() {
            return Err(format!("--weights: two files named {file_name}"));
        }
        link_or_copy(file, &staged)?;
        // classes.txt beside the model names its classes (see README: classes).
        let classes = file.with_file_name("classes.txt");
        if classes.is_file() && !staging.join("classes.txt").exists() {
            link_or_copy(&classes, &staging.join("classes.txt"))?;
        }
        // The path as models.yaml will hold it, once the folder is in place.
        let rel = model_path_of(settings, name, file_name)?;
        graphs.insert(key.clone(), staged);
        graph_config.push((key.clone(), rel));
    }
    let mut config = graph_config.clone();
    for (k, v) in &req.config {
        if config.iter().any(|(c, _)| c == k) {
            return Err(format!("config key `{k}` given twice"));
        }
        config.push((k.clone(), v.clone()));
    }
    let implementation = staging
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let mut spec = temp_spec(settings, name, &implementation, graphs, config.clone());
    spec.classes = req
        .classes
        .iter()
        .enumerate()
        .map(|(i, c)| (i as u32, c.clone()))
        .collect();
    let (_, info) = describe(rt, &spec, settings)
        .map_err(|e| format!("its describe failed, so CVAT could not list it: {e}"))?;
    let missing: Vec<&String> = info
        .needs
        .iter()
        .filter(|n| !config.iter().any(|(k, _)| k == *n))
        .collect();
    if !missing.is_empty() {
        let hint: Vec<String> = missing
            .iter()
            .map(|n| format!("--weights {n}=FILE.onnx or --config {n}=VALUE"))
            .collect();
        return Err(format!(
            "the {kind} needs config {}: pass {}",
            missing
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
            hint.join(", ")
        ));
    }
    Ok((info, graph_config, config))
}

/// `components/NAME/FILE` relative to the models root (the folder does not exist yet).
fn model_path_of(settings: &Settings, name: &str, file_name: &str) -> Result<String, String> {
    let components = model_path(settings, &settings.components_dir).map_err(|e| {
        format!(
            "components/ must lie under the models root for `host add` to place weights there: {e}"
        )
    })?;
    Ok(Path::new(&components)
        .join(name)
        .join(file_name)
        .display()
        .to_string())
}

/// Hard-link `from` to `to` (same file system), else copy it.
fn link_or_copy(from: &Path, to: &Path) -> Result<(), String> {
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_and_config_arguments() {
        assert_eq!(
            AddRequest::parse_weights("m/face.onnx"),
            ("weights".into(), PathBuf::from("m/face.onnx"))
        );
        assert_eq!(
            AddRequest::parse_weights("encoder=m/enc.onnx"),
            ("encoder".into(), PathBuf::from("m/enc.onnx"))
        );
        assert_eq!(
            AddRequest::parse_config("threshold=0.4").unwrap(),
            ("threshold".into(), "0.4".into())
        );
        assert!(AddRequest::parse_config("threshold").is_err());
    }
}
