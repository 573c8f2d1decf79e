//! `<service>.<environment>.localhost[:port]` → the route key `service.environment`.

use std::borrow::Cow;

const SUFFIX: &str = ".localhost";

/// The route key of a Host header value, lower-cased; `None` when the host is not of the form
/// `<service>.<environment>.localhost` with two DNS-1123 labels (an optional `:port` and a trailing
/// dot are allowed). Borrows when the host is already lower case, which is the common case.
pub(crate) fn route_key(host: &str) -> Option<Cow<'_, str>> {
    let host = match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        Some(_) => return None,
        None => host,
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    let split = host.len().checked_sub(SUFFIX.len())?;
    if !host.is_char_boundary(split) || !host[split..].eq_ignore_ascii_case(SUFFIX) {
        return None;
    }
    let labels = &host[..split];
    let (service, environment) = labels.split_once('.')?;
    if !is_label(service) || !is_label(environment) {
        return None;
    }
    if labels.bytes().any(|b| b.is_ascii_uppercase()) {
        Some(Cow::Owned(labels.to_ascii_lowercase()))
    } else {
        Some(Cow::Borrowed(labels))
    }
}

/// The route key for a service and environment as the engine names them, or `None` when either
/// is not a DNS-1123 label (such a route could never be reached through a Host header).
pub(crate) fn key_of(service: &str, environment: &str) -> Option<String> {
    if !is_label(service) || !is_label(environment) {
        return None;
    }
    let mut key = String::with_capacity(service.len() + 1 + environment.len());
    key.push_str(service);
    key.push('.');
    key.push_str(environment);
    key.make_ascii_lowercase();
    Some(key)
}

/// A DNS-1123 label, compared case-insensitively: 1–63 of `[a-z0-9-]`, alphanumeric at both ends.
fn is_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            bytes.len() <= 63
                && first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_service_environment_localhost() {
        assert_eq!(route_key("api.dev.localhost").as_deref(), Some("api.dev"));
        assert_eq!(
            route_key("api.dev.localhost:7780").as_deref(),
            Some("api.dev")
        );
        assert_eq!(
            route_key("API.Dev.LocalHost:80").as_deref(),
            Some("api.dev")
        );
        assert_eq!(
            route_key("my-api.prod-2.localhost.").as_deref(),
            Some("my-api.prod-2")
        );
        assert!(matches!(
            route_key("api.dev.localhost"),
            Some(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn refuses_other_hosts() {
        for host in [
            "localhost",
            "dev.localhost",
            "a.b.c.localhost",
            "api.dev.example.com",
            "api.dev.localhost:",
            "api.dev.localhost:http",
            "-api.dev.localhost",
            "api-.dev.localhost",
            "api_x.dev.localhost",
            ".dev.localhost",
            "api..localhost",
            "ä.dev.localhost",
            "[::1]:80",
            "",
        ] {
            assert_eq!(route_key(host), None, "{host}");
        }
        let long = format!("{}.dev.localhost", "a".repeat(64));
        assert_eq!(route_key(&long), None);
    }

    #[test]
    fn key_of_lowercases_and_validates() {
        assert_eq!(key_of("Api", "DEV").as_deref(), Some("api.dev"));
        assert_eq!(key_of("api", "dev.x"), None);
        assert_eq!(key_of("", "dev"), None);
    }
}
