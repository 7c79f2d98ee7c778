//! Cartesia WebSocket server messages (protocols §6.1).

use base64::Engine as _;
use serde_json::Value;

/// One server message, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMessage {
    /// Audio for a context (base64 already decoded; may be an odd number of bytes).
    Chunk {
        context_id: Option<String>,
        data: Vec<u8>,
    },
    /// The context finished.
    Done { context_id: Option<String> },
    /// The context (or, without a context id, the connection) failed.
    Error {
        context_id: Option<String>,
        status_code: Option<u16>,
        message: String,
    },
    /// `timestamps`, `flush_done` and unknown types: nothing to do.
    Ignored {
        kind: String,
        context_id: Option<String>,
    },
    /// Not a valid message (not JSON, bad base64).
    Malformed {
        context_id: Option<String>,
        reason: String,
    },
}

/// The human-readable part of an error object: `error` (string or `{message}`), else
/// `title` / `message`, with `error_code` appended when present.
pub(crate) fn error_text(v: &Value) -> Option<String> {
    let base = match v.get("error") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Object(o)) => o.get("message").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
    .or_else(|| {
        let title = v.get("title").and_then(Value::as_str);
        let msg = v.get("message").and_then(Value::as_str);
        match (title, msg) {
            (Some(t), Some(m)) => Some(format!("{t}: {m}")),
            (Some(t), None) => Some(t.to_string()),
            (None, Some(m)) => Some(m.to_string()),
            (None, None) => None,
        }
    })?;
    Some(match v.get("error_code").and_then(Value::as_str) {
        Some(code) => format!("{base} [{code}]"),
        None => base,
    })
}

/// Parses one text frame. Never panics; unknown fields and types are tolerated.
pub fn parse_server_message(text: &str) -> ServerMessage {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return ServerMessage::Malformed {
                context_id: None,
                reason: format!("not JSON: {e}"),
            }
        }
    };
    let context_id = v
        .get("context_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let kind = v.get("type").and_then(Value::as_str).unwrap_or_default();
    let status_code = v
        .get("status_code")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok());
    match kind {
        "chunk" => {
            let data = v.get("data").and_then(Value::as_str).unwrap_or_default();
            match base64::engine::general_purpose::STANDARD.decode(data.trim()) {
                Ok(data) => ServerMessage::Chunk { context_id, data },
                Err(e) => ServerMessage::Malformed {
                    context_id,
                    reason: format!("chunk data is not base64: {e}"),
                },
            }
        }
        "done" => ServerMessage::Done { context_id },
        "error" => ServerMessage::Error {
            context_id,
            status_code,
            message: error_text(&v).unwrap_or_else(|| "unspecified error".into()),
        },
        // An error without `type` (some gateways) still names itself.
        "" if v.get("error").is_some() || status_code.is_some_and(|s| s >= 400) => {
            ServerMessage::Error {
                context_id,
                status_code,
                message: error_text(&v).unwrap_or_else(|| "unspecified error".into()),
            }
        }
        other => ServerMessage::Ignored {
            kind: other.to_string(),
            context_id,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_type() {
        assert_eq!(
            parse_server_message(
                r#"{"type":"chunk","data":"AQID","done":false,"status_code":206,"step_time":12.3,"context_id":"u-1"}"#
            ),
            ServerMessage::Chunk {
                context_id: Some("u-1".into()),
                data: vec![1, 2, 3]
            }
        );
        assert_eq!(
            parse_server_message(
                r#"{"type":"done","done":true,"status_code":200,"context_id":"u-1"}"#
            ),
            ServerMessage::Done {
                context_id: Some("u-1".into())
            }
        );
        assert_eq!(
            parse_server_message(
                r#"{"type":"error","done":true,"status_code":400,"context_id":"u-1","title":"Invalid voice","message":"voice not found","error_code":"voice_not_found"}"#
            ),
            ServerMessage::Error {
                context_id: Some("u-1".into()),
                status_code: Some(400),
                message: "Invalid voice: voice not found [voice_not_found]".into()
            }
        );
        assert_eq!(
            parse_server_message(
                r#"{"type":"error","done":true,"status_code":500,"context_id":"u-2","error":"boom"}"#
            ),
            ServerMessage::Error {
                context_id: Some("u-2".into()),
                status_code: Some(500),
                message: "boom".into()
            }
        );
        assert!(matches!(
            parse_server_message(
                r#"{"type":"timestamps","word_timestamps":{"words":["a"],"start":[0],"end":[1]},"context_id":"u-1"}"#
            ),
            ServerMessage::Ignored { .. }
        ));
        assert!(matches!(
            parse_server_message(
                r#"{"type":"flush_done","flush_id":1,"flush_done":true,"context_id":"u-1"}"#
            ),
            ServerMessage::Ignored { .. }
        ));
        assert!(matches!(
            parse_server_message("nope"),
            ServerMessage::Malformed { .. }
        ));
        assert!(matches!(
            parse_server_message(r#"{"type":"chunk","data":"%%%","context_id":"u-1"}"#),
            ServerMessage::Malformed {
                context_id: Some(_),
                ..
            }
        ));
    }
}
