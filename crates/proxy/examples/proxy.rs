//! The proxy with one fixed route, for benchmarks and manual tests:
//! `bench.dev.localhost` → the given backends.
//!
//! `cargo run --release -p slipway-proxy --example proxy -- 127.0.0.1:7780 127.0.0.1:8081 [more backends…]`
//!
//! `SLIPWAY_PROXY_THREADS` sets `ProxyConfig::worker_threads` (default: one per CPU; 0 serves on
//! the example's own single-threaded runtime); `SLIPWAY_PROXY_MAX_REQUESTS` sets
//! `ProxyConfig::client_max_requests` (0: no limit).

use std::net::SocketAddr;

use slipway_proxy::{Proxy, ProxyConfig};
use tokio::net::TcpListener;

fn parse(arg: &str) -> std::io::Result<SocketAddr> {
    arg.parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{arg}: {e}")))
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let listen = parse(args.first().map_or("127.0.0.1:7780", String::as_str))?;
    let backends = args
        .iter()
        .skip(1)
        .map(|a| parse(a))
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut config = ProxyConfig::default();
    if let Some(threads) = std::env::var("SLIPWAY_PROXY_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
    {
        config.worker_threads = threads;
    }
    if let Ok(max) = std::env::var("SLIPWAY_PROXY_MAX_REQUESTS") {
        // "0" or "none": keep client connections open for any number of requests.
        config.client_max_requests = max.parse().ok().filter(|&m: &u64| m > 0);
    }
    // The proxy runs its own worker threads; this runtime only waits for Ctrl-C (or serves
    // requests itself when SLIPWAY_PROXY_THREADS=0).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let proxy = Proxy::new(config);
        proxy.set_backends("bench", "dev", backends);
        let listener = TcpListener::bind(listen).await?;
        eprintln!(
            "proxy listening on {}; bench.dev.localhost → {:?}",
            listener.local_addr()?,
            proxy.backends("bench", "dev")
        );
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        proxy.serve(listener, shutdown).await
    })
}
