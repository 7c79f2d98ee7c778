//! Deepgram server messages → [`SttEvent`]s.
//!
//! Parsing is deliberately lenient (protocols §0.1): unknown fields are ignored, missing fields
//! take neutral defaults, unknown message types produce nothing, and a message that is not JSON
//! at all produces a non-fatal error event rather than tearing the stream down.

use serde::Deserialize;
use serde_json::Value;
use talky_core::ports::stt::{SttEvent, SttWord};

/// Parses one v1 (`/v1/listen`) text message. Returns `None` for message types Talky does not
/// use.
pub fn parse_v1_message(text: &str) -> Option<SttEvent> {
    let value = match parse_json(text) {
        Ok(v) => v,
        Err(ev) => return Some(ev),
    };
    match type_of(&value) {
        "Results" => {
            let r: V1Results = match serde_json::from_value(value) {
                Ok(r) => r,
                Err(e) => return Some(malformed("Results", &e)),
            };
            let alt = r
                .channel
                .alternatives
                .into_iter()
                .next()
                .unwrap_or_default();
            if r.is_final {
                Some(SttEvent::Final {
                    text: alt.transcript,
                    confidence: alt.confidence,
                    words: alt.words.into_iter().map(V1Word::into_word).collect(),
                    audio_start: r.start,
                    audio_end: r.start + r.duration,
                    speech_final: r.speech_final,
                    from_finalize: r.from_finalize,
                })
            } else {
                Some(SttEvent::Interim {
                    text: alt.transcript,
                })
            }
        }
        "SpeechStarted" => Some(SttEvent::SpeechStarted {
            timestamp: number(&value, "timestamp").unwrap_or(0.0),
        }),
        "UtteranceEnd" => Some(SttEvent::UtteranceEnd {
            last_word_end: number(&value, "last_word_end"),
        }),
        "Metadata" => Some(SttEvent::Metadata {
            request_id: string(&value, "request_id"),
            duration: number(&value, "duration"),
        }),
        "Error" | "FatalError" => Some(error_event(&value)),
        _ => None,
    }
}

/// Parses one Flux (`/v2/listen`) text message. Returns `None` for message types Talky does not
/// use (including `ConfigureSuccess`).
pub fn parse_flux_message(text: &str) -> Option<SttEvent> {
    let value = match parse_json(text) {
        Ok(v) => v,
        Err(ev) => return Some(ev),
    };
    match type_of(&value) {
        "Connected" => Some(SttEvent::Connected {
            request_id: string(&value, "request_id"),
        }),
        "TurnInfo" => {
            let t: TurnInfo = match serde_json::from_value(value) {
                Ok(t) => t,
                Err(e) => return Some(malformed("TurnInfo", &e)),
            };
            match t.event.as_str() {
                "Update" => Some(SttEvent::Interim { text: t.transcript }),
                "StartOfTurn" => Some(SttEvent::StartOfTurn {
                    turn_index: t.turn_index,
                    text: t.transcript,
                }),
                "EagerEndOfTurn" => Some(SttEvent::EagerEndOfTurn {
                    turn_index: t.turn_index,
                    text: t.transcript,
                    confidence: t.end_of_turn_confidence,
                }),
                "TurnResumed" => Some(SttEvent::TurnResumed {
                    turn_index: t.turn_index,
                    text: t.transcript,
                }),
                "EndOfTurn" => Some(SttEvent::EndOfTurn {
                    turn_index: t.turn_index,
                    text: t.transcript,
                    confidence: t.end_of_turn_confidence,
                    words: t.words.into_iter().map(FluxWord::into_word).collect(),
                    audio_window_start: t.audio_window_start,
                    audio_window_end: t.audio_window_end,
                    manual: t.trigger.as_deref() == Some("manual"),
                }),
                _ => None,
            }
        }
        "ConfigureFailure" => Some(SttEvent::Error {
            message: format!(
                "Configure rejected: {}",
                string(&value, "description").unwrap_or_default()
            ),
            fatal: false,
        }),
        "Error" | "FatalError" => Some(error_event(&value)),
        _ => None,
    }
}

fn parse_json(text: &str) -> Result<Value, SttEvent> {
    serde_json::from_str::<Value>(text).map_err(|e| SttEvent::Error {
        message: format!("unparsable Deepgram message: {e}"),
        fatal: false,
    })
}

fn type_of(v: &Value) -> &str {
    v.get("type").and_then(Value::as_str).unwrap_or("")
}

fn malformed(kind: &str, e: &serde_json::Error) -> SttEvent {
    SttEvent::Error {
        message: format!("malformed Deepgram {kind} message: {e}"),
        fatal: false,
    }
}

fn string(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn number(v: &Value, key: &str) -> Option<f64> {
    match v.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Both `Error` and `FatalError`, with any of the code/description keys Deepgram uses, are fatal:
/// the server closes afterwards (protocols §5.2).
fn error_event(v: &Value) -> SttEvent {
    let code = ["error_code", "code", "err_code", "variant"]
        .iter()
        .find_map(|k| string(v, k));
    let description = ["description", "message", "err_msg"]
        .iter()
        .find_map(|k| string(v, k))
        .unwrap_or_else(|| "no description".to_string());
    let message = match code {
        Some(code) => format!("Deepgram {}: [{code}] {description}", type_of(v)),
        None => format!("Deepgram {}: {description}", type_of(v)),
    };
    SttEvent::Error {
        message,
        fatal: true,
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct V1Results {
    is_final: bool,
    speech_final: bool,
    from_finalize: bool,
    start: f64,
    duration: f64,
    channel: V1Channel,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct V1Channel {
    alternatives: Vec<V1Alternative>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct V1Alternative {
    transcript: String,
    confidence: f32,
    words: Vec<V1Word>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct V1Word {
    word: String,
    start: Option<f64>,
    end: Option<f64>,
    confidence: f32,
    punctuated_word: Option<String>,
}

impl V1Word {
    fn into_word(self) -> SttWord {
        SttWord {
            word: self.word,
            punctuated: self.punctuated_word,
            start: self.start,
            end: self.end,
            confidence: self.confidence,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct TurnInfo {
    event: String,
    turn_index: u32,
    audio_window_start: f64,
    audio_window_end: f64,
    transcript: String,
    words: Vec<FluxWord>,
    end_of_turn_confidence: f32,
    trigger: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct FluxWord {
    word: String,
    confidence: f32,
}

impl FluxWord {
    fn into_word(self) -> SttWord {
        SttWord {
            word: self.word,
            punctuated: None,
            start: None,
            end: None,
            confidence: self.confidence,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_results_interim_and_final() {
        let interim = r#"{"type":"Results","channel_index":[0,1],"duration":1.12,"start":3.40,
            "is_final":false,"speech_final":false,"channel":{"alternatives":[{"transcript":"i'd like to",
            "confidence":0.93,"words":[]}]},"metadata":{"request_id":"r"},"extra":{"x":1}}"#;
        assert_eq!(
            parse_v1_message(interim),
            Some(SttEvent::Interim {
                text: "i'd like to".into()
            })
        );
        let fin = r#"{"type":"Results","duration":1.0,"start":3.5,"is_final":true,"speech_final":true,
            "from_finalize":true,"channel":{"alternatives":[{"transcript":"I'd like to","confidence":0.9,
            "words":[{"word":"i'd","start":3.5,"end":3.7,"confidence":0.95,"punctuated_word":"I'd"}]}]}}"#;
        match parse_v1_message(fin) {
            Some(SttEvent::Final {
                text,
                confidence,
                words,
                audio_start,
                audio_end,
                speech_final,
                from_finalize,
            }) => {
                assert_eq!(text, "I'd like to");
                assert!((confidence - 0.9).abs() < 1e-6);
                assert_eq!(words.len(), 1);
                assert_eq!(words[0].punctuated.as_deref(), Some("I'd"));
                assert_eq!(words[0].start, Some(3.5));
                assert!((audio_start - 3.5).abs() < 1e-9);
                assert!((audio_end - 4.5).abs() < 1e-9);
                assert!(speech_final && from_finalize);
            }
            other => panic!("unexpected {other:?}"),
        }
        // No alternatives at all: an empty final, not a failure.
        assert!(matches!(
            parse_v1_message(r#"{"type":"Results","is_final":true}"#),
            Some(SttEvent::Final { ref text, .. }) if text.is_empty()
        ));
    }

    #[test]
    fn v1_other_messages() {
        assert_eq!(
            parse_v1_message(r#"{"type":"SpeechStarted","channel":[0],"timestamp":6.1}"#),
            Some(SttEvent::SpeechStarted { timestamp: 6.1 })
        );
        assert_eq!(
            parse_v1_message(r#"{"type":"UtteranceEnd","channel":[0,1],"last_word_end":5.82}"#),
            Some(SttEvent::UtteranceEnd {
                last_word_end: Some(5.82)
            })
        );
        assert_eq!(
            parse_v1_message(r#"{"type":"Metadata","request_id":"abc","duration":"42.3"}"#),
            Some(SttEvent::Metadata {
                request_id: Some("abc".into()),
                duration: Some(42.3)
            })
        );
        assert_eq!(parse_v1_message(r#"{"type":"Whatever"}"#), None);
        assert_eq!(parse_v1_message(r#"{"no_type":1}"#), None);
        assert!(matches!(
            parse_v1_message("not json"),
            Some(SttEvent::Error { fatal: false, .. })
        ));
        assert!(matches!(
            parse_v1_message(r#"{"type":"Results","is_final":"yes"}"#),
            Some(SttEvent::Error { fatal: false, .. })
        ));
        match parse_v1_message(
            r#"{"type":"Error","description":"bad audio","message":"m","variant":"DATA-0000"}"#,
        ) {
            Some(SttEvent::Error { message, fatal }) => {
                assert!(fatal);
                assert!(message.contains("DATA-0000") && message.contains("bad audio"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn flux_turn_events() {
        let ti = |event: &str, extra: &str| {
            format!(
                r#"{{"type":"TurnInfo","request_id":"r","sequence_id":3,"event":"{event}","turn_index":2,
                "audio_window_start":1.0,"audio_window_end":2.5,"transcript":"yes please",
                "words":[{{"word":"yes","confidence":0.9}},{{"word":"please","confidence":0.8}}],
                "end_of_turn_confidence":0.81{extra}}}"#
            )
        };
        assert_eq!(
            parse_flux_message(&ti("Update", "")),
            Some(SttEvent::Interim {
                text: "yes please".into()
            })
        );
        assert_eq!(
            parse_flux_message(&ti("StartOfTurn", "")),
            Some(SttEvent::StartOfTurn {
                turn_index: 2,
                text: "yes please".into()
            })
        );
        assert!(matches!(
            parse_flux_message(&ti("EagerEndOfTurn", "")),
            Some(SttEvent::EagerEndOfTurn { turn_index: 2, .. })
        ));
        assert!(matches!(
            parse_flux_message(&ti("TurnResumed", "")),
            Some(SttEvent::TurnResumed { turn_index: 2, .. })
        ));
        match parse_flux_message(&ti("EndOfTurn", r#","trigger":"manual""#)) {
            Some(SttEvent::EndOfTurn {
                turn_index,
                text,
                words,
                audio_window_end,
                manual,
                ..
            }) => {
                assert_eq!(turn_index, 2);
                assert_eq!(text, "yes please");
                assert_eq!(words.len(), 2);
                assert!((audio_window_end - 2.5).abs() < 1e-9);
                assert!(manual);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(parse_flux_message(&ti("SomethingNew", "")), None);
    }

    #[test]
    fn flux_connected_errors_and_configure() {
        assert_eq!(
            parse_flux_message(r#"{"type":"Connected","request_id":"u-1","sequence_id":0}"#),
            Some(SttEvent::Connected {
                request_id: Some("u-1".into())
            })
        );
        for msg in [
            r#"{"type":"Error","error_code":"E1","description":"boom"}"#,
            r#"{"type":"FatalError","code":"E1","description":"boom"}"#,
        ] {
            match parse_flux_message(msg) {
                Some(SttEvent::Error { message, fatal }) => {
                    assert!(fatal, "{msg}");
                    assert!(message.contains("[E1] boom"), "{message}");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            parse_flux_message(r#"{"type":"ConfigureSuccess","sequence_id":4}"#),
            None
        );
        assert!(matches!(
            parse_flux_message(r#"{"type":"ConfigureFailure","description":"x"}"#),
            Some(SttEvent::Error { fatal: false, .. })
        ));
    }
}
