//! The Vonage media WebSocket protocol (protocols §2.9), as pure parse/build functions.
//!
//! Vonage is the client: it sends JSON events as text frames and caller audio as binary frames;
//! Talky sends agent audio as exact 20 ms binary frames plus two JSON actions, `clear` and
//! `notify`. Keeping the wire format here (and nothing else) lets the server's socket task stay
//! a dumb pump and lets the session be tested without a socket.
//!
//! Inbound text is demultiplexed by its `event` key; unknown events are reported as
//! [`VonageEvent::Unknown`] (log and ignore), unparsable text as an error (never fed to audio).
//! Inbound binary frames are checked: a frame that is not a whole number of samples, empty, or
//! larger than 1 s is rejected ([`AudioRejection`]) and must be counted by the caller; frames of
//! another valid length are accepted and re-framed by the session's byte carry.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::audio::{BYTES_PER_SAMPLE, FRAME_BYTES, MAX_CHUNK_BYTES};

/// The `clear` action: drop everything Vonage buffered but has not played yet.
pub const CLEAR_ACTION: &str = r#"{"action":"clear"}"#;

/// A text event from Vonage.
#[derive(Debug, Clone, PartialEq)]
pub enum VonageEvent {
    /// `websocket:connected`, the first message.
    Connected {
        /// The `content-type`, e.g. `audio/l16;rate=16000`.
        content_type: Option<String>,
        /// Sample rate parsed from the content type (16000 when absent or unparsable).
        sample_rate: u32,
        /// The `token` key, when the NCCO put the media token in headers instead of the URL.
        token: Option<String>,
        /// Every other top-level key (NCCO headers are repeated here).
        headers: Map<String, Value>,
    },
    /// `websocket:dtmf`: one key press.
    Dtmf {
        /// The digit (`0-9`, `*`, `#`).
        digit: String,
        /// Press duration in ms, when sent.
        duration_ms: Option<u64>,
    },
    /// `websocket:cleared`: the reply to `clear`.
    Cleared,
    /// `websocket:notify`: the payload of a `notify` whose audio has played.
    Notify {
        /// The payload, verbatim.
        payload: Value,
    },
    /// Any other event name (log and ignore).
    Unknown {
        /// The event name, or empty when the message had no `event` key.
        event: String,
    },
}

/// Why a text frame could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Not JSON, or not a JSON object.
    #[error("media socket text frame is not a JSON object: {0}")]
    Malformed(String),
}

/// Why a binary frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AudioRejection {
    /// An odd number of bytes: half a sample.
    #[error("audio frame of {0} bytes is not a whole number of samples")]
    PartialSample(usize),
    /// More than 1 s of audio in one message.
    #[error("audio frame of {0} bytes exceeds the 1 s limit")]
    Oversized(usize),
    /// No bytes.
    #[error("empty audio frame")]
    Empty,
}

/// Parses the sample rate from a content type like `audio/l16;rate=8000`.
pub fn sample_rate_of(content_type: &str) -> Option<u32> {
    content_type.split(';').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        if k.trim().eq_ignore_ascii_case("rate") {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

#[derive(Deserialize)]
struct DtmfBody {
    digit: Option<Value>,
    duration: Option<Value>,
}

fn value_to_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn value_to_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Parses one inbound text frame.
pub fn parse_text(text: &str) -> Result<VonageEvent, TextError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| TextError::Malformed(e.to_string()))?;
    let Value::Object(mut obj) = value else {
        return Err(TextError::Malformed("not an object".into()));
    };
    let event = obj
        .get("event")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok(match event.as_str() {
        "websocket:connected" => {
            obj.remove("event");
            let content_type = obj
                .remove("content-type")
                .and_then(|v| v.as_str().map(str::to_string));
            let sample_rate = content_type
                .as_deref()
                .and_then(sample_rate_of)
                .unwrap_or(16_000);
            let token = obj
                .remove("token")
                .and_then(|v| v.as_str().map(str::to_string));
            VonageEvent::Connected {
                content_type,
                sample_rate,
                token,
                headers: obj,
            }
        }
        "websocket:dtmf" => {
            // Either flat (`digit`, `duration`) or nested under `dtmf`.
            let body = obj.get("dtmf").cloned().unwrap_or(Value::Object(obj));
            let body: DtmfBody = serde_json::from_value(body)
                .map_err(|e| TextError::Malformed(format!("dtmf event: {e}")))?;
            VonageEvent::Dtmf {
                digit: body
                    .digit
                    .as_ref()
                    .and_then(value_to_string)
                    .unwrap_or_default(),
                duration_ms: body.duration.as_ref().and_then(value_to_u64),
            }
        }
        "websocket:cleared" => VonageEvent::Cleared,
        "websocket:notify" => VonageEvent::Notify {
            payload: obj.remove("payload").unwrap_or(Value::Null),
        },
        _ => VonageEvent::Unknown { event },
    })
}

/// Checks one inbound binary frame (whole samples, 1 byte..=1 s).
pub fn check_audio(frame: &[u8]) -> Result<(), AudioRejection> {
    let len = frame.len();
    if len == 0 {
        Err(AudioRejection::Empty)
    } else if !len.is_multiple_of(BYTES_PER_SAMPLE) {
        Err(AudioRejection::PartialSample(len))
    } else if len > MAX_CHUNK_BYTES {
        Err(AudioRejection::Oversized(len))
    } else {
        Ok(())
    }
}

/// True when an accepted frame has the nominal 20 ms size (others are re-framed and counted).
pub fn is_nominal_frame(frame: &Bytes) -> bool {
    frame.len() == FRAME_BYTES
}

/// The `notify` action carrying `payload`.
pub fn notify_action(payload: &Value) -> String {
    json!({"action": "notify", "payload": payload}).to_string()
}

/// The notify payload Talky uses for the end of a sentence.
pub fn sentence_payload(utterance: &str, sentence: u32) -> Value {
    json!({"utterance": utterance, "sentence": sentence})
}

/// Extracts `(utterance, sentence)` from a payload built by [`sentence_payload`].
pub fn parse_sentence_payload(payload: &Value) -> Option<(String, u32)> {
    let utt = payload.get("utterance")?.as_str()?.to_string();
    let sentence = value_to_u64(payload.get("sentence")?)?;
    Some((utt, u32::try_from(sentence).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connected_with_headers() {
        let ev = parse_text(
            r#"{"event":"websocket:connected","content-type":"audio/l16;rate=16000","call_id":"c1","token":"tok"}"#,
        )
        .unwrap();
        match ev {
            VonageEvent::Connected {
                content_type,
                sample_rate,
                token,
                headers,
            } => {
                assert_eq!(content_type.as_deref(), Some("audio/l16;rate=16000"));
                assert_eq!(sample_rate, 16_000);
                assert_eq!(token.as_deref(), Some("tok"));
                assert_eq!(headers.get("call_id"), Some(&json!("c1")));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(sample_rate_of("audio/l16; rate=8000"), Some(8000));
        assert_eq!(sample_rate_of("audio/l16"), None);
    }

    #[test]
    fn dtmf_cleared_notify_unknown() {
        assert_eq!(
            parse_text(r#"{"event":"websocket:dtmf","digit":"5","duration":260}"#).unwrap(),
            VonageEvent::Dtmf {
                digit: "5".into(),
                duration_ms: Some(260)
            }
        );
        assert_eq!(
            parse_text(r##"{"event":"websocket:dtmf","dtmf":{"digit":"#","duration":"100"}}"##)
                .unwrap(),
            VonageEvent::Dtmf {
                digit: "#".into(),
                duration_ms: Some(100)
            }
        );
        assert_eq!(
            parse_text(r#"{"event":"websocket:cleared"}"#).unwrap(),
            VonageEvent::Cleared
        );
        let n = parse_text(
            r#"{"event":"websocket:notify","payload":{"utterance":"u3","sentence":1},"extra":1}"#,
        )
        .unwrap();
        match n {
            VonageEvent::Notify { payload } => {
                assert_eq!(parse_sentence_payload(&payload), Some(("u3".into(), 1)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_text(r#"{"event":"websocket:whatever"}"#).unwrap(),
            VonageEvent::Unknown {
                event: "websocket:whatever".into()
            }
        );
        assert!(parse_text("not json").is_err());
        assert!(parse_text("[1,2]").is_err());
    }

    #[test]
    fn audio_checks() {
        assert_eq!(check_audio(&[0; 640]), Ok(()));
        assert_eq!(check_audio(&[0; 320]), Ok(()));
        assert_eq!(
            check_audio(&[0; 641]),
            Err(AudioRejection::PartialSample(641))
        );
        assert_eq!(
            check_audio(&[0; 32_002]),
            Err(AudioRejection::Oversized(32_002))
        );
        assert_eq!(check_audio(&[]), Err(AudioRejection::Empty));
        assert!(is_nominal_frame(&Bytes::from_static(&[0; 640])));
    }

    #[test]
    fn outbound_actions() {
        let v: Value = serde_json::from_str(CLEAR_ACTION).unwrap();
        assert_eq!(v, json!({"action":"clear"}));
        let n = notify_action(&sentence_payload("u7", 2));
        let v: Value = serde_json::from_str(&n).unwrap();
        assert_eq!(
            v,
            json!({"action":"notify","payload":{"utterance":"u7","sentence":2}})
        );
    }
}
