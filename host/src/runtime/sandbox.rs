//! What a component may import, in one place: the granted set, the linker that provides
//! exactly that set, and the check `host add` runs on a component's import list.
//!
//! The granted set is what a Rust component built with the standard library imports, served
//! with nothing in it: an empty environment, no arguments, no preopened directories (so the
//! filesystem interfaces can open nothing), stdin at end of file, stdout and stderr into
//! the host's bounded log, clocks and random numbers. Plus `wasi:nn` and the host's
//! `cvat:model` imports. Sockets, HTTP and anything else are not linked at all: a component
//! that imports them cannot be instantiated, and `host add` refuses it up front.

use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::cli::{WasiCli, WasiCliView as _};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView as _};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView as _};
use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random, sockets, sync};
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView as _};
use wasmtime_wasi::WasiView;

use super::kind::CONTRACT_VERSION;

/// The `wasi:nn` version the host implements.
pub const WASI_NN_VERSION: &str = "0.2.0-rc-2024-10-28";

/// Interfaces (without version) granted to every component, and what each one gives.
pub const GRANTED_WASI: &[(&str, &str)] = &[
    ("wasi:cli/environment", "no variables, no arguments"),
    ("wasi:cli/exit", "ends the call with an error"),
    ("wasi:cli/stdin", "empty"),
    ("wasi:cli/stdout", "into the host's log (bounded)"),
    ("wasi:cli/stderr", "into the host's log (bounded)"),
    ("wasi:cli/terminal-input", "no terminal"),
    ("wasi:cli/terminal-output", "no terminal"),
    ("wasi:cli/terminal-stdin", "no terminal"),
    ("wasi:cli/terminal-stdout", "no terminal"),
    ("wasi:cli/terminal-stderr", "no terminal"),
    ("wasi:clocks/wall-clock", "the time"),
    ("wasi:clocks/monotonic-clock", "the time"),
    ("wasi:io/error", "stream errors"),
    ("wasi:io/poll", "waiting on the streams above"),
    ("wasi:io/streams", "the streams above"),
    ("wasi:random/random", "random bytes"),
    ("wasi:random/insecure", "random bytes"),
    ("wasi:random/insecure-seed", "random bytes"),
    ("wasi:filesystem/types", "no directory to open anything in"),
    ("wasi:filesystem/preopens", "no preopened directories"),
];

/// The `cvat:model` interfaces a component may import (its kind is an export).
pub const GRANTED_MODEL: &[&str] = &["types", "graphs", "pixels"];

/// The `wasi:nn` interfaces a component may import.
pub const GRANTED_NN: &[&str] = &["tensor", "graph", "inference", "errors"];

/// How the host answers one import of a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Linked, and served as described in [`GRANTED_WASI`] (or `wasi:nn`, `cvat:model`).
    Served,
    /// Linked, and every call is refused (`access-denied`): the name exists so the
    /// component instantiates, but nothing gets through. `wasi:sockets` 0.2.x, which
    /// CPython's C library imports whether or not the code opens a socket: the store allows
    /// no TCP, no UDP, no name lookup and no address.
    Inert,
    /// Not linked: the component is refused, with this reason.
    Refused(String),
}

/// Interfaces linked inert (see [`Grant::Inert`]).
pub const INERT: &[&str] = &[
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/ip-name-lookup",
];

/// How the host answers the import `name` (`package/interface@version`).
pub fn grant(name: &str) -> Grant {
    let (iface, version) = name.split_once('@').unwrap_or((name, ""));
    let refuse = |why: String| Grant::Refused(format!("{name}: {why}"));
    if let Some(rest) = iface.strip_prefix("cvat:model/") {
        if !GRANTED_MODEL.contains(&rest) {
            return refuse("not an interface cvat:model offers to import".into());
        }
        if version != CONTRACT_VERSION {
            return refuse(format!(
                "this host speaks cvat:model@{CONTRACT_VERSION} (`host wit` writes it)"
            ));
        }
        return Grant::Served;
    }
    if let Some(rest) = iface.strip_prefix("wasi:nn/") {
        if !GRANTED_NN.contains(&rest) {
            return refuse("not a wasi:nn interface".into());
        }
        if version != WASI_NN_VERSION {
            return refuse(format!("this host implements wasi:nn@{WASI_NN_VERSION}"));
        }
        return Grant::Served;
    }
    let wasi_02 = version.starts_with("0.2.");
    if GRANTED_WASI.iter().any(|(g, _)| *g == iface) {
        // WASI 0.2.x interfaces are linked by semver compatibility.
        return if wasi_02 {
            Grant::Served
        } else {
            refuse("only WASI 0.2.x is served".into())
        };
    }
    if INERT.contains(&iface) && wasi_02 {
        return Grant::Inert;
    }
    refuse(if iface.starts_with("wasi:http/") {
        "HTTP is not granted".into()
    } else {
        "not in the granted set (see `host wit`: cvat-model.wit, world model-imports)".into()
    })
}

/// A component's imports, sorted by how the host answers them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Imports {
    pub served: Vec<String>,
    pub inert: Vec<String>,
    /// Each with its reason.
    pub refused: Vec<String>,
}

impl Imports {
    /// Read and sort the imports of a component binary.
    pub fn of(wasm: &[u8]) -> Result<Self, String> {
        let mut out = Self::default();
        for name in imports_of(wasm)? {
            match grant(&name) {
                Grant::Served => out.served.push(name),
                Grant::Inert => out.inert.push(name),
                Grant::Refused(why) => out.refused.push(why),
            }
        }
        Ok(out)
    }

    /// `Err` naming every refused import, if any.
    pub fn check(&self) -> Result<(), String> {
        if self.refused.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "imports what this host does not grant: {}",
                self.refused.join("; ")
            ))
        }
    }
}

/// The names a component binary imports (its top level only: what the host must provide).
pub fn imports_of(wasm: &[u8]) -> Result<Vec<String>, String> {
    use wasmparser::{Parser, Payload};
    let mut depth = 0usize;
    let mut names = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| format!("not a valid WebAssembly binary: {e}"))? {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(imports) if depth == 1 => {
                for import in imports {
                    let import = import.map_err(|e| format!("reading imports: {e}"))?;
                    names.push(import.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(names)
}

struct HasTable;

impl HasData for HasTable {
    type Data<'a> = &'a mut ResourceTable;
}

/// Link the granted WASI interfaces (see [`GRANTED_WASI`]) into `linker`, and nothing else
/// of WASI, plus the [`INERT`] sockets interfaces (every call refused by the store's
/// settings, see [`super::store::StoreState::new`]). `wasi:nn` and `cvat:model` are linked by
/// [`crate::nn::add_to_linker`].
pub fn add_wasi_to_linker<T: WasiView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    let l = linker;
    sync::io::error::add_to_linker::<T, HasTable>(l, |t| t.ctx().table)?;
    sync::io::poll::add_to_linker::<T, HasTable>(l, |t| t.ctx().table)?;
    sync::io::streams::add_to_linker::<T, HasTable>(l, |t| t.ctx().table)?;
    clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    filesystem::preopens::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;
    sync::filesystem::types::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;
    random::random::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    // INERT: linked so that CPython components instantiate; the store refuses every use.
    let options = sync::LinkOptions::default();
    sockets::instance_network::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sockets::network::add_to_linker::<T, WasiSockets>(l, &(&options).into(), T::sockets)?;
    sockets::tcp_create_socket::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sync::sockets::udp_create_socket::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sockets::ip_name_lookup::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sync::sockets::tcp::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sync::sockets::udp::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_what_rust_std_links_and_nothing_else() {
        let refused = |name: &str| match grant(name) {
            Grant::Refused(why) => why,
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(grant("wasi:cli/environment@0.2.6"), Grant::Served);
        assert_eq!(grant("wasi:filesystem/preopens@0.2.0"), Grant::Served);
        assert_eq!(
            grant(&format!("cvat:model/pixels@{CONTRACT_VERSION}")),
            Grant::Served
        );
        assert_eq!(
            grant(&format!("wasi:nn/graph@{WASI_NN_VERSION}")),
            Grant::Served
        );
        assert_eq!(grant("wasi:sockets/tcp@0.2.9"), Grant::Inert);
        assert!(refused("wasi:sockets/tcp@0.3.0").contains("not in the granted set"));
        assert!(refused("wasi:http/outgoing-handler@0.2.0").contains("HTTP"));
        assert!(refused("acme:spy/upload").contains("not in the granted set"));
        assert!(refused("wasi:cli/stdout@0.3.0").contains("0.2.x"));
        assert!(refused("cvat:model/pixels@0.2.0").contains("speaks"));
        assert!(refused("cvat:model/detector@0.3.0").contains("offers"));
        assert!(refused("wasi:nn/graph@0.2.0").contains("implements"));
    }

    #[test]
    fn lists_a_component_s_imports() {
        let wasm = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../components/blazeface/component.wasm"
        ));
        let Ok(wasm) = wasm else {
            eprintln!("SKIPPED: components not built (scripts/build-components.sh)");
            return;
        };
        let names = imports_of(&wasm).unwrap();
        assert!(
            names.iter().any(|n| n.starts_with("cvat:model/pixels@")),
            "{names:?}"
        );
        assert!(
            names.iter().any(|n| n.starts_with("wasi:nn/graph@")),
            "{names:?}"
        );
        let imports = Imports::of(&wasm).unwrap();
        assert_eq!(
            (imports.inert.len(), imports.refused.len()),
            (0, 0),
            "{imports:?}"
        );
        assert_eq!(imports.served.len(), names.len());
    }
}
