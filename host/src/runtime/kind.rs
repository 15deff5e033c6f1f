//! Reading a component's kind from its exports, without compiling it.

use std::fmt;

use serde::Serialize;

/// The CVAT function kinds. A component's kind is the `cvat:model/<kind>` interface it
/// exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Detector,
    Tracker,
    Interactor,
    Reid,
}

impl Kind {
    /// The name CVAT uses (`metadata.annotations.type`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Detector => "detector",
            Kind::Tracker => "tracker",
            Kind::Interactor => "interactor",
            Kind::Reid => "reid",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The version of the `cvat:model` package (wit/cvat-model.wit) this host implements.
/// Components built against another version are refused with a rebuild hint.
pub const CONTRACT_VERSION: &str = "0.3.0";

/// The kind a component binary exports. Fails when it is not a component or exports no
/// (or more than one) `cvat:model` kind interface.
pub fn kind_of(wasm: &[u8]) -> Result<Kind, String> {
    use wasmparser::{Parser, Payload};
    let mut depth = 0usize;
    let mut found = Vec::new();
    let mut is_component = false;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| format!("not a valid WebAssembly binary: {e}"))? {
            Payload::Version { encoding, .. } => {
                if depth == 0 {
                    is_component = matches!(encoding, wasmparser::Encoding::Component);
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentExportSection(exports) if depth == 1 => {
                for export in exports {
                    let export = export.map_err(|e| format!("reading exports: {e}"))?;
                    let name = export.name.name;
                    let Some(rest) = name.strip_prefix("cvat:model/") else {
                        continue;
                    };
                    let (iface, version) = rest.split_once('@').unwrap_or((rest, ""));
                    if !version.is_empty() && version != CONTRACT_VERSION {
                        return Err(format!(
                            "built against cvat:model@{version}, but this host speaks cvat:model@{CONTRACT_VERSION}: rebuild the component against its contract (`host wit` writes it; in this repository, scripts/build-components.sh)"
                        ));
                    }
                    let kind = match iface {
                        "detector" => Kind::Detector,
                        "tracker" => Kind::Tracker,
                        "interactor" => Kind::Interactor,
                        "reid" => Kind::Reid,
                        _ => continue,
                    };
                    found.push(kind);
                }
            }
            _ => {}
        }
    }
    if !is_component {
        return Err("not a WebAssembly component (a core module? build for wasm32-wasip2)".into());
    }
    match found.as_slice() {
        [k] => Ok(*k),
        [] => Err("exports none of cvat:model/detector, tracker, interactor or reid".into()),
        _ => Err("exports more than one cvat:model kind interface".into()),
    }
}
