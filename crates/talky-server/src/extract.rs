//! Request extractors whose rejections use the K1 error shape: JSON bodies (415 for another
//! content type, 400 for malformed JSON, 422 with the field path for schema errors), path
//! ids (anything that is not the expected UUID is simply "not found") and query strings
//! (422).

use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A JSON body (request) or JSON response.
pub struct ApiJson<T>(pub T);

fn is_json(parts: &axum::http::HeaderMap) -> bool {
    parts
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// Parses JSON with the path of the offending field on schema errors.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = match serde_path_to_error::deserialize(&mut de) {
        Ok(v) => v,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            use serde_json::error::Category;
            return Err(match inner.classify() {
                Category::Syntax | Category::Eof | Category::Io => {
                    ApiError::bad_request("malformed_json", "Malformed JSON body")
                }
                Category::Data => {
                    let msg = strip_position(&inner.to_string());
                    let field = if path == "." {
                        field_from_message(&msg).unwrap_or_default()
                    } else {
                        match field_from_message(&msg) {
                            Some(f) if msg.starts_with("missing field") => format!("{path}.{f}"),
                            _ => path,
                        }
                    };
                    ApiError::validation(field, msg)
                }
            });
        }
    };
    de.end()
        .map_err(|_| ApiError::bad_request("malformed_json", "Malformed JSON body"))?;
    Ok(value)
}

fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Pulls `name` out of serde messages like "missing field `name`" / "unknown field `name`".
fn field_from_message(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let end = msg[start..].find('`')? + start;
    Some(msg[start..end].to_string())
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Content-Type must be application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rej| body_rejection(rej.status()))?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The error for a body that could not be read (usually the size limit).
pub fn body_rejection(status: StatusCode) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(status, "payload_too_large", "Request body too large")
    } else {
        ApiError::bad_request("bad_body", "Could not read request body")
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Path parameters; any mismatch (e.g. a non-UUID id) is a 404.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|_| ApiError::not_found("Not found"))
    }
}

/// Query parameters; schema errors are 422 naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                let msg = e.into_inner().to_string();
                let field = if path == "." {
                    field_from_message(&msg).unwrap_or_default()
                } else {
                    path
                };
                ApiError::validation(field, msg)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        n: Option<u32>,
    }

    #[test]
    fn classifies_json_errors() {
        let e = parse_json::<Body>(b"{not json").unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.detail.as_str()),
            (400, "Malformed JSON body")
        );
        let e = parse_json::<Body>(b"{}").unwrap_err();
        assert_eq!(e.status.as_u16(), 422);
        assert!(e.fields.unwrap().contains_key("email"));
        let e = parse_json::<Body>(br#"{"email":"a","x":1}"#).unwrap_err();
        assert!(e.fields.unwrap().contains_key("x"));
        let e = parse_json::<Body>(br#"{"email":"a","n":"x"}"#).unwrap_err();
        assert!(e.fields.unwrap().contains_key("n"));
        let e = parse_json::<Body>(br#"{"email":"a"} trailing"#).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert!(parse_json::<Body>(br#"{"email":"a"}"#).is_ok());
    }
}

/// The client's IP address (from the connection), `None` when unknown (e.g. in-process
/// requests). Used as the key of per-IP rate limits.
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// `?page=&page_size=` with K3 bounds (`page ≥ 1`, `1 ≤ page_size ≤ 100`). A route whose
/// query has other parameters too declares `page`/`page_size` itself (serde's `flatten`
/// cannot read numbers from a query string) and builds a `PageParams` from them.
#[derive(Debug, Clone, Copy, serde::Deserialize, utoipa::IntoParams)]
pub struct PageParams {
    /// 1-based page number.
    pub page: Option<i64>,
    /// Items per page, 1–100.
    pub page_size: Option<i64>,
}

impl PageParams {
    /// Validated page, `default_size` when `page_size` is absent.
    pub fn page(&self, default_size: u32) -> Result<talky_core::ports::store::Page, ApiError> {
        let page = self.page.unwrap_or(1);
        if page < 1 || page > i64::from(u32::MAX) {
            return Err(ApiError::validation("page", "must be at least 1"));
        }
        let size = self.page_size.unwrap_or(i64::from(default_size));
        if !(1..=100).contains(&size) {
            return Err(ApiError::validation(
                "page_size",
                "must be between 1 and 100",
            ));
        }
        Ok(talky_core::ports::store::Page::new(
            page as u32,
            size as u32,
        ))
    }
}
