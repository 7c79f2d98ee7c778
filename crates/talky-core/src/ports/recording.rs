//! Where recording audio lives: a local directory by default, S3-compatible storage later.
//! Keys are `recordings/{tenant}/{campaign}/{call}.wav` (behaviour.md H3).

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

#[derive(Debug, thiserror::Error)]
pub enum RecordingStoreError {
    #[error("recording object not found")]
    NotFound,
    #[error("invalid recording key")]
    InvalidKey,
    #[error("recording storage failed: {0}")]
    Io(String),
}

/// A byte stream of (part of) a stored object.
pub type ByteStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

#[async_trait]
pub trait RecordingStore: Send + Sync + 'static {
    /// Stores the whole object, replacing any previous one; returns its size.
    async fn put(&self, key: &str, data: Bytes) -> Result<u64, RecordingStoreError>;
    /// Stores the local file at `path` as the object, replacing any previous one, and
    /// returns its size. The file may be moved rather than copied: callers must not rely on
    /// it existing afterwards (and should remove it if it does).
    async fn put_file(&self, key: &str, path: &std::path::Path)
        -> Result<u64, RecordingStoreError>;
    /// The object's size, or `NotFound`.
    async fn size(&self, key: &str) -> Result<u64, RecordingStoreError>;
    /// Streams bytes `start..=end` (inclusive) of the object.
    async fn read_range(
        &self,
        key: &str,
        start: u64,
        end: u64,
    ) -> Result<ByteStream, RecordingStoreError>;
    async fn delete(&self, key: &str) -> Result<(), RecordingStoreError>;
}

/// Builds the object key of H3, replacing path separators inside each id.
pub fn recording_key(tenant: &str, campaign: &str, call: &str) -> String {
    let clean = |s: &str| s.replace(['/', '\\'], "_");
    format!(
        "recordings/{}/{}/{}.wav",
        clean(tenant),
        clean(campaign),
        clean(call)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_sanitises_separators() {
        assert_eq!(
            super::recording_key("t/1", "c\\2", "x"),
            "recordings/t_1/c_2/x.wav"
        );
    }
}
