//! Watching models.yaml and the components folder. Polling (every
//! [`crate::up::WATCH_PERIOD`]) rather than inotify: it sees a folder and the file written
//! into it in the same instant, editors' rename-on-save and network file systems alike,
//! and costs a few `stat` calls.

use std::path::{Path, PathBuf};

use crate::config::discovery::Discovery;
use crate::config::{ModelsFile, Settings};
use crate::runtime::Runtime;

/// Tracks what models.yaml and the components folder looked like at the last apply.
pub struct Watcher {
    root: PathBuf,
    config_path: PathBuf,
    settings: Settings,
    last: String,
    discovery: Discovery,
}

/// A cheap fingerprint: the config file's size and mtime, and each component folder's
/// `component.wasm` and `.onnx` files with theirs.
fn fingerprint(config_path: &Path, components: &Path) -> String {
    let stamp = |p: &Path| format!("{:?}", crate::runtime::loaded::stamp(p));
    let mut parts = vec![stamp(config_path)];
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(components)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    dirs.sort();
    for d in dirs {
        for f in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = f.path();
            let name = f.file_name().to_string_lossy().to_string();
            if name == "component.wasm" || name.ends_with(".onnx") || name == "classes.txt" {
                parts.push(format!("{}={}", p.display(), stamp(&p)));
            }
        }
    }
    parts.join(";")
}

impl Watcher {
    /// Start from the state just applied.
    pub fn new(root: &Path, config_path: &Path, settings: &Settings) -> Self {
        Self {
            root: root.to_path_buf(),
            config_path: config_path.to_path_buf(),
            settings: settings.clone(),
            last: fingerprint(config_path, &settings.components_dir),
            discovery: Discovery::default(),
        }
    }

    /// Register new component folders, then return the re-read models.yaml if it or the
    /// components changed since the last call. A file that no longer parses is reported and
    /// the running state kept.
    pub fn poll(&mut self, rt: &Runtime) -> Option<ModelsFile> {
        self.discovery.scan(rt, &self.settings, &self.config_path);
        let now = fingerprint(&self.config_path, &self.settings.components_dir);
        if now == self.last {
            return None;
        }
        self.last = now;
        match ModelsFile::load(&self.config_path, &self.root) {
            Ok(file) => {
                if file.settings != self.settings {
                    tracing::warn!(
                        "the settings block changed; it takes effect at the next `host up`"
                    );
                }
                Some(file)
            }
            Err(e) => {
                tracing::error!("models.yaml not applied, running state kept: {e:#}");
                None
            }
        }
    }
}
