//! The WebAssembly side: one wasmtime [`Engine`] for every instance, the on-disk cache of
//! compiled components, the epoch ticker that enforces per-call deadlines, and the
//! [`Linker`] that grants components exactly `wasi:nn`, `cvat:model/graphs` and a WASI
//! with nothing in it.

pub mod kind;
pub mod loaded;
pub mod sandbox;
pub mod store;

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

use store::StoreState;

/// How often the epoch advances; deadlines are whole ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Shared wasmtime state.
pub struct Runtime {
    pub engine: Engine,
    pub linker: Linker<StoreState>,
    /// Optional inference libraries, handed to every instance's wasi-nn.
    pub libraries: crate::nn::Libraries,
    cache_dir: PathBuf,
    stop: Arc<AtomicBool>,
}

impl Runtime {
    /// Build the engine and linker and start the epoch ticker. Compiled components are
    /// cached under `cache_dir`.
    pub fn new(cache_dir: PathBuf, libraries: crate::nn::Libraries) -> anyhow::Result<Self> {
        let mut cfg = Config::new();
        cfg.wasm_component_model(true);
        cfg.epoch_interruption(true);
        cfg.max_wasm_stack(2 << 20);
        let engine = Engine::new(&cfg)?;
        let mut linker = Linker::new(&engine);
        // The granted WASI (runtime/sandbox.rs): what Rust's std links, served empty.
        sandbox::add_wasi_to_linker(&mut linker)?;
        // wasi:nn and cvat:model's imports (types with its frame resource, graphs, pixels).
        crate::nn::add_to_linker(&mut linker)?;
        let stop = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.clone();
        let ticker_stop = stop.clone();
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while !ticker_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticker_engine.increment_epoch();
                }
            })?;
        Ok(Self {
            engine,
            linker,
            libraries,
            cache_dir,
            stop,
        })
    }

    /// Compile `wasm`, or load the compiled artifact cached for exactly these bytes and
    /// this engine configuration. Returns the component and whether the cache served it.
    pub fn compile(&self, wasm: &[u8]) -> anyhow::Result<(Component, bool)> {
        let path = self.cache_path(wasm);
        if path.is_file() {
            // SAFETY: the file was written by `Component::serialize` of this engine
            // configuration (its name holds the engine's compatibility hash) into a
            // directory owned by the host; wasmtime also checks the header.
            match unsafe { Component::deserialize_file(&self.engine, &path) } {
                Ok(c) => return Ok((c, true)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable compile cache entry: {e}")
                }
            }
        }
        let started = Instant::now();
        tracing::info!(
            bytes = wasm.len(),
            "compiling a component (first use; cached afterwards)"
        );
        let component = Component::new(&self.engine, wasm)
            .map_err(anyhow::Error::from)
            .context("compiling the component")?;
        tracing::info!(
            ms = started.elapsed().as_millis() as u64,
            "component compiled"
        );
        if let Err(e) = self.write_cache(&path, &component) {
            tracing::warn!(path = %path.display(), "could not cache the compiled component: {e}");
        }
        Ok((component, false))
    }

    fn cache_path(&self, wasm: &[u8]) -> PathBuf {
        let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let digest = Sha256::digest(wasm);
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        self.cache_dir
            .join(format!("{hex}-{:016x}.cwasm", engine_hash.finish()))
    }

    fn write_cache(&self, path: &Path, component: &Component) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.cache_dir)?;
        let bytes = component.serialize()?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
