//! The `host` command line.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "host",
    version,
    about = "Serve WebAssembly model components to CVAT"
)]
struct Cli {
    /// Project root: components/, models and the state directory are found from here.
    #[arg(long, global = true, default_value = ".")]
    root: PathBuf,
    /// The models file (default: <root>/config/models.yaml).
    #[arg(long, short = 'f', global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every instance in the foreground; Ctrl-C stops gracefully.
    Up,
    /// Show every instance of the running host.
    Status {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = cli
        .config
        .clone()
        .unwrap_or_else(|| cli.root.join("config/models.yaml"));
    match cli.command {
        Command::Up => up(cli.root, config),
        Command::Status { json } => status(&cli.root, &config, json),
    }
}

fn up(root: PathBuf, config: PathBuf) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,ort=warn".into()),
        )
        .init();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
            let _ = tx.send(true);
        });
        host::up::run(&root, &config, rx).await
    })
}

/// Ask the running host's management API for its status.
fn status(root: &std::path::Path, config: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let file = host::config::ModelsFile::load(config, root)?;
    let ip = match file.settings.bind {
        IpAddr::V4(v) if v.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        other => other,
    };
    let addr = SocketAddr::new(ip, file.settings.gateway_port);
    let body = match http_get(addr, "/api/status") {
        Ok(b) => b,
        Err(e) => {
            eprintln!("host is not running (nothing answers on {addr}: {e})");
            std::process::exit(3);
        }
    };
    let value: serde_json::Value =
        serde_json::from_str(&body).context("the host answered with invalid JSON")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!("gateway {}", value["gateway"].as_str().unwrap_or("?"));
    println!(
        "{:<24} {:<11} {:>6}  {:<9} {:>8}  error",
        "NAME", "KIND", "PORT", "STATE", "REQUESTS"
    );
    for i in value["instances"].as_array().into_iter().flatten() {
        let s = |k: &str| {
            i[k].as_str()
                .map(String::from)
                .unwrap_or_else(|| "-".into())
        };
        println!(
            "{:<24} {:<11} {:>6}  {:<9} {:>8}  {}",
            s("name"),
            s("kind"),
            i["port"]
                .as_u64()
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into()),
            s("state"),
            i["requests"].as_u64().unwrap_or(0),
            i["error"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// A minimal HTTP/1.0 GET (the host only ever talks to itself on loopback here).
fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let (head, body) = resp
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    anyhow::ensure!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "unexpected answer: {}",
        head.lines().next().unwrap_or("")
    );
    Ok(body.to_string())
}
