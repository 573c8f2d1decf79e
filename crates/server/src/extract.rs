//! Extractors that turn every malformed request into a problem document naming the field.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, StatusCode};
use serde::de::DeserializeOwned;
use slipway_core::FieldError;

/// A JSON body. Unknown fields, missing fields and wrong types become 422 with the field's name;
/// malformed JSON 400; a body over the limit 413; a missing `Content-Type: application/json` 415.
pub struct ValidJson<T>(pub T);

impl<S, T> FromRequest<S> for ValidJson<T>
where
    T: DeserializeOwned + utoipa::PartialSchema,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as JSON with the header Content-Type: application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(format!(
                    "the request body is larger than {} bytes; send a smaller body",
                    crate::BODY_LIMIT
                ))
            } else {
                ApiError::bad_request(
                    format!("could not read the request body: {rejection}"),
                    vec![],
                )
            }
        })?;
        parse_json(&bytes)
            .map(ValidJson)
            .map_err(|e| all_missing::<T>(e, &bytes))
    }
}

/// serde reports the first missing field only; with the body's schema every required field that
/// is not there is listed (the API promises each one).
fn all_missing<T: utoipa::PartialSchema>(e: ApiError, bytes: &[u8]) -> ApiError {
    use utoipa::openapi::{schema::Schema, RefOr};
    let ApiError::Invalid { errors, .. } = &e else {
        return e;
    };
    let top_level_missing = matches!(errors.as_slice(),
        [only] if !only.field.contains('.') && only.message.starts_with("missing field"));
    if !top_level_missing {
        return e;
    }
    let (Ok(serde_json::Value::Object(present)), RefOr::T(Schema::Object(schema))) = (
        serde_json::from_slice::<serde_json::Value>(bytes),
        T::schema(),
    ) else {
        return e;
    };
    let mut all = errors.clone();
    for name in &schema.required {
        if !present.contains_key(name) && all.iter().all(|e| &e.field != name) {
            all.push(FieldError::new(
                name.clone(),
                format!("missing field `{name}`; it is required"),
            ));
        }
    }
    ApiError::invalid(slipway_core::ValidationErrors(all))
}

/// Parses a JSON document into `T`, mapping serde's complaint to the field it is about.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            use serde_json::error::Category;
            match inner.classify() {
                Category::Syntax | Category::Eof | Category::Io => Err(ApiError::bad_request(
                    format!("the body is not valid JSON: {inner}"),
                    vec![],
                )),
                Category::Data => {
                    let msg = inner.to_string();
                    let msg = plain(msg.split(" at line ").next().unwrap_or(&msg));
                    // serde_path_to_error's path ends at an unknown field, and at the parent of a missing one.
                    let field = match backticked(&msg, "missing field `") {
                        Some(f) if path != "." => format!("{path}.{f}"),
                        Some(f) => f,
                        None if path != "." => path.clone(),
                        None => backticked(&msg, "unknown field `")
                            .unwrap_or_else(|| "body".to_string()),
                    };
                    let message = if msg.starts_with("unknown field") {
                        format!("{msg}; remove it")
                    } else if msg.starts_with("missing field") {
                        format!("{msg}; it is required")
                    } else {
                        msg
                    };
                    let errors = vec![FieldError::new(field, message)];
                    Err(ApiError::invalid(slipway_core::ValidationErrors(errors)))
                }
            }
        }
    }
}

/// serde's complaint in the API's words: JSON types instead of Rust's (`expected u32` → a whole
/// number and its range, `expected struct SeedRegisterRequest` → a JSON object).
fn plain(msg: &str) -> String {
    let mut msg = msg.to_string();
    if let Some(i) = msg.find("expected struct ") {
        let head = if msg.starts_with("invalid length ") {
            "an array".to_string()
        } else {
            msg[..i].trim_end_matches([',', ' ']).to_string()
        };
        msg = format!("{head}, expected a JSON object");
    }
    msg = msg.replace("floating point `", "number `");
    // chrono's complaints about a date and time, which say nothing of the format it wants.
    if [
        "input contains invalid characters",
        "premature end of input",
        "trailing input",
        "input is out of range",
        "no possible date and time matching input",
        "input is not enough for unique date and time",
    ]
    .contains(&msg.as_str())
    {
        msg.push_str("; expected an RFC 3339 date and time such as 2026-12-07T09:30:00Z");
    }
    for (rust, json) in [
        ("u8", "a whole number from 0 to 255"),
        ("u16", "a whole number from 0 to 65535"),
        ("u32", "a whole number from 0 to 4294967295"),
        ("u64", "a whole number from 0 to 18446744073709551615"),
        ("usize", "a whole number from 0 to 18446744073709551615"),
        ("i32", "a whole number"),
        ("i64", "a whole number"),
        ("f32", "a number"),
        ("f64", "a number"),
    ] {
        if let Some(stem) = msg.strip_suffix(&format!("expected {rust}")) {
            msg = format!("{stem}expected {json}");
            break;
        }
    }
    msg
}

fn backticked(msg: &str, prefix: &str) -> Option<String> {
    let rest = msg.strip_prefix(prefix)?;
    rest.split('`').next().map(str::to_string)
}

/// Query parameters with the same error mapping as [`ValidJson`].
pub struct ValidQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ValidQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize::<_, T>(de)
            .map(ValidQuery)
            .map_err(|err| {
                let path = err.path().to_string();
                let msg = plain(&err.into_inner().to_string());
                let field = backticked(&msg, "unknown field `")
                    .or_else(|| backticked(&msg, "missing field `"))
                    .unwrap_or_else(|| {
                        if path == "." {
                            "query".to_string()
                        } else {
                            path
                        }
                    });
                ApiError::bad_request(
                    format!("invalid query parameter {field}: {msg}"),
                    vec![FieldError::new(field, msg)],
                )
            })
    }
}

/// Path parameters; a segment that cannot be decoded (e.g. invalid UTF-8) is a 400 problem document.
pub struct ValidPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ValidPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| ValidPath(v))
            .map_err(|rejection| {
                ApiError::bad_request(
                    format!("the URL path could not be read: {}", rejection.body_text()),
                    vec![FieldError::new("path", rejection.body_text())],
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        replicas: Option<u32>,
    }

    fn complaint(body: &str) -> String {
        match parse_json::<Body>(body.as_bytes()) {
            Err(ApiError::Invalid { errors, .. }) => {
                format!("{}: {}", errors[0].field, errors[0].message)
            }
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn type_errors_speak_json_not_rust() {
        for (body, want) in [
            (
                r#"{"name":"a","replicas":"2"}"#,
                r#"replicas: invalid type: string "2", expected a whole number from 0 to 4294967295"#,
            ),
            (
                r#"{"name":"a","replicas":99999999999999999999}"#,
                "replicas: invalid type: number `1e+20`, expected a whole number from 0 to 4294967295",
            ),
            (
                r#"{"name":"a","replicas":-1}"#,
                "replicas: invalid value: integer `-1`, expected a whole number from 0 to 4294967295",
            ),
            ("[]", "body: an array, expected a JSON object"),
            ("null", "body: invalid type: null, expected a JSON object"),
        ] {
            let got = complaint(body);
            assert_eq!(got, want, "{body}");
            assert!(!got.contains("Body") && !got.contains("u32"), "{got}");
        }
    }

    #[test]
    fn a_bad_date_and_time_says_which_format() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Q {
            since: Option<chrono::DateTime<chrono::Utc>>,
        }
        let err = parse_json::<Q>(br#"{"since":"yesterday"}"#).unwrap_err();
        let ApiError::Invalid { errors, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(errors[0].field, "since");
        assert!(
            errors[0].message.contains("RFC 3339") && errors[0].message.contains("2026-12-07T"),
            "{}",
            errors[0].message
        );
    }
}
