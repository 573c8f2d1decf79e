//! The deployment engine's swap protocol under load: start the new release, `set_backends`,
//! `drain` the old one, stop it gracefully — and no client request may fail.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, within, Conn, TestBackend, TestProxy};
use slipway_proxy::ProxyConfig;

const CLIENTS: usize = 16;
const SWAPS: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_backends_under_load_loses_no_request() {
    within(Duration::from_secs(120), async {
        let proxy = TestProxy::start(ProxyConfig::default()).await;
        let mut current = TestBackend::start("release-0").await;
        proxy.proxy.set_backends("app", "dev", vec![current.addr]);

        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::<String>::new()));
        let mut clients = Vec::new();
        for client in 0..CLIENTS {
            let (stop, ok, failures) = (stop.clone(), ok.clone(), failures.clone());
            let addr = proxy.addr;
            clients.push(tokio::spawn(async move {
                // One keep-alive connection per client, as a browser or a load tester keeps.
                let mut conn = Conn::open(addr).await;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    // Every third request takes a few milliseconds, so some are always in
                    // flight when a swap happens.
                    let path = if (n + client as u64) % 3 == 0 {
                        "/slow"
                    } else {
                        "/"
                    };
                    match conn.get("app.dev.localhost", path).await {
                        Ok(answer)
                            if answer.status == 200 && answer.body.starts_with("release-") =>
                        {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(answer) => failures
                            .lock()
                            .unwrap()
                            .push(format!("{} {}", answer.status, answer.body)),
                        Err(e) => {
                            failures.lock().unwrap().push(format!("client error: {e}"));
                            conn = Conn::open(addr).await;
                        }
                    }
                }
            }));
        }

        // Load flows before the first swap.
        assert!(eventually(Duration::from_secs(10), || current.served() > 50).await);
        let mut served_by_old = Vec::new();
        for release in 1..=SWAPS {
            let next = TestBackend::start(&format!("release-{release}")).await;
            // The engine health-checks the new release before moving traffic.
            let health = common::get(next.addr, "app.dev.localhost", "/").await;
            assert_eq!(health.status, 200);

            proxy.proxy.set_backends("app", "dev", vec![next.addr]);
            assert_eq!(proxy.proxy.backends("app", "dev"), vec![next.addr]);
            assert!(
                proxy
                    .proxy
                    .drain(&[current.addr], Duration::from_secs(10))
                    .await,
                "release-{} did not drain",
                release - 1
            );
            let old = std::mem::replace(&mut current, next);
            served_by_old.push(old.served());
            old.shutdown().await;
            // The new release takes load before the next swap.
            let before = current.served();
            assert!(
                eventually(Duration::from_secs(10), || current.served() > before + 50).await,
                "release-{release} got no traffic"
            );
        }
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            client.await.unwrap();
        }

        let failures = std::mem::take(&mut *failures.lock().unwrap());
        assert!(
            failures.is_empty(),
            "{} failed requests: {:?}",
            failures.len(),
            &failures[..failures.len().min(20)]
        );
        // Every release served, the first one included (its count was taken before the check
        // above for the new release, so each is > 0 by construction of the loop).
        assert!(served_by_old.iter().all(|n| *n > 0), "{served_by_old:?}");
        // The proxy counts a request once it has written the answer's last byte, which can be
        // a moment after the client read it.
        let ok = ok.load(Ordering::Relaxed);
        assert!(
            eventually(Duration::from_secs(10), || {
                let stats = proxy.proxy.stats("app", "dev").unwrap();
                stats.requests == ok && stats.in_flight == 0
            })
            .await,
            "{:?} vs {ok} answered",
            proxy.proxy.stats("app", "dev")
        );
        assert_eq!(proxy.proxy.stats("app", "dev").unwrap().errors, 0);
        current.shutdown().await;
        proxy.shutdown().await;
    })
    .await;
}
