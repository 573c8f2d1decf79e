use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

fn port() -> u16 {
    std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080)
}

/// Container health check: exits 0 when /health answers 200.
fn healthcheck() -> i32 {
    let check = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect(("127.0.0.1", port()))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream
            .write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer.starts_with("HTTP/1.1 200 "))
    };
    if check().unwrap_or(false) {
        0
    } else {
        1
    }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        std::process::exit(healthcheck());
    }
    // A panic is logged as one JSON line like everything else; a route that panics still
    // answers 500 (`service::route_with`).
    std::panic::set_hook(Box::new(|info| {
        eprintln!(
            "{}",
            service::log_line(
                "error",
                "panic",
                &[("error", service::json_string(&info.to_string()))]
            )
        );
    }));
    let port = port();
    let listener = match TcpListener::bind(("0.0.0.0", port)) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!(
                "{}",
                service::log_line(
                    "error",
                    "cannot listen",
                    &[("error", service::json_string(&e.to_string()))]
                )
            );
            std::process::exit(1);
        }
    };
    println!(
        "{}",
        service::log_line("info", "listening", &[("port", port.to_string())])
    );
    service::serve(listener, Arc::new(|line| println!("{line}")));
}
