//! The model files the project knows how to fetch (`models/manifest.json`, read by
//! `scripts/models.py fetch`): when an instance names one that is missing, its error says
//! which command fetches it and from where.

use std::path::{Component, Path, PathBuf};

/// One fetchable file, as the manifest pins it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Entry {
    pub title: String,
    pub url: String,
    pub size: u64,
    /// Where it lands, relative to `models/`.
    pub dest: String,
    /// A file derived from it after fetching (`symbolic_hw:nanotrack/backbone.onnx`).
    #[serde(default)]
    pub then: Option<String>,
}

#[derive(serde::Deserialize)]
struct Manifest {
    models: serde_json::Map<String, serde_json::Value>,
}

/// The manifest's entry that provides `rel` (a path as models.yaml writes it, relative to
/// the models root), with its name. `None` when the manifest is absent or names no such file.
pub fn provider(models_root: &Path, rel: &Path) -> Option<(String, Entry)> {
    let text = std::fs::read_to_string(models_root.join("models/manifest.json")).ok()?;
    let manifest: Manifest = serde_json::from_str(&text).ok()?;
    let wanted = normal(rel);
    manifest.models.into_iter().find_map(|(name, v)| {
        let e: Entry = serde_json::from_value(v).ok()?;
        let derived = e
            .then
            .as_deref()
            .and_then(|t| t.split_once(':'))
            .map(|(_, p)| p.to_string());
        let provides = std::iter::once(e.dest.clone())
            .chain(derived)
            .any(|p| normal(&Path::new("models").join(p)) == wanted);
        provides.then_some((name, e))
    })
}

/// `rel` without `.` components.
fn normal(rel: &Path) -> PathBuf {
    rel.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// What to tell the user about a missing model file: the command that fetches it, and from
/// where, when the manifest knows it.
pub fn missing_hint(models_root: &Path, rel: &Path) -> String {
    match provider(models_root, rel) {
        Some((name, e)) => format!(
            "`scripts/models.py fetch {name}` fetches it ({}, {:.1} MB, from {})",
            e.title,
            e.size as f64 / 1e6,
            e.url
        ),
        None => "models/README.md says where each model comes from".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_fetch_command_for_a_manifest_file_and_its_derived_files() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let (name, e) = provider(root, Path::new("models/yolox_nano/yolox_nano.onnx")).unwrap();
        assert_eq!(name, "yolox_nano");
        assert!(e.url.starts_with("https://"), "{}", e.url);
        let (name, _) = provider(root, Path::new("./models/nanotrack/backbone.onnx")).unwrap();
        assert_eq!(name, "nanotrack_backbone");
        assert!(provider(root, Path::new("models/mine.onnx")).is_none());
        let hint = missing_hint(root, Path::new("models/yolox_nano/yolox_nano.onnx"));
        assert!(
            hint.starts_with("`scripts/models.py fetch yolox_nano` fetches it"),
            "{hint}"
        );
        assert!(missing_hint(root, Path::new("models/mine.onnx")).contains("models/README.md"));
    }
}
