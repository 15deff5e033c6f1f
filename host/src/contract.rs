//! The contract, as shipped: the `cvat:model` WIT package this host speaks and its `wasi:nn`
//! dependency, embedded at build time from `wit/`. `host wit` writes it out; the
//! out-of-repo scaffolds (`host new --dir`) vendor it.

use std::path::{Path, PathBuf};

/// `(path under the WIT folder, contents)` of every file of the contract.
pub const FILES: &[(&str, &str)] = &[
    ("cvat-model.wit", include_str!("../../wit/cvat-model.wit")),
    (
        "deps/wasi-nn/wasi-nn.wit",
        include_str!("../../wit/deps/wasi-nn/wasi-nn.wit"),
    ),
];

/// Write the contract into `dir` (created if missing), replacing older copies of its
/// files. Returns the paths written.
pub fn write_wit(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    for (rel, text) in FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_contract_is_the_version_the_host_speaks() {
        let wit = FILES[0].1;
        let package = format!(
            "package cvat:model@{};",
            crate::runtime::kind::CONTRACT_VERSION
        );
        assert!(
            wit.contains(&package),
            "wit/cvat-model.wit lacks `{package}`"
        );
        let nn = format!(
            "package wasi:nn@{};",
            crate::runtime::sandbox::WASI_NN_VERSION
        );
        assert!(FILES[1].1.contains(&nn), "wasi-nn.wit lacks `{nn}`");
    }
}
