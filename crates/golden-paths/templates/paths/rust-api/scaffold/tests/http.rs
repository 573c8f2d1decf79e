//! The server over real sockets.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn serves_health_and_metrics_and_logs_every_request() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        service::serve(listener, Arc::new(move |l| sink.lock().unwrap().push(l)))
    });

    let health = get(addr, "/health");
    assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
    assert!(health.ends_with("\r\n\r\n{\"status\":\"ok\"}"), "{health}");
    assert!(get(addr, "/nope").starts_with("HTTP/1.1 404 "));
    let metrics = get(addr, "/metrics");
    assert!(
        metrics.contains("http_requests_total{method=\"GET\",path=\"/health\",code=\"200\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("http_requests_total{method=\"GET\",path=\"other\",code=\"404\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "http_request_duration_seconds_count{method=\"GET\",path=\"/health\",code=\"200\"} 1"
        ),
        "{metrics}"
    );

    let lines = lines.lock().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"path\":\"/health\"") && l.contains("\"status\":200")),
        "{lines:?}"
    );
}
