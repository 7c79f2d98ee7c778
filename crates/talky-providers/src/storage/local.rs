//! Recordings as files under one root folder. Keys are relative paths built by
//! `talky_core::ports::recording::recording_key`; anything that could escape the root
//! (absolute paths, `..`, backslashes, NUL) is refused.

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use std::io::SeekFrom;
use std::path::{Component, Path, PathBuf};
use talky_core::ports::recording::{ByteStream, RecordingStore, RecordingStoreError};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Stores objects as files below `root`.
#[derive(Debug, Clone)]
pub struct LocalRecordingStore {
    root: PathBuf,
}

impl LocalRecordingStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, RecordingStoreError> {
        if key.is_empty() || key.contains('\\') || key.contains('\0') {
            return Err(RecordingStoreError::InvalidKey);
        }
        let rel = Path::new(key);
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(RecordingStoreError::InvalidKey);
        }
        Ok(self.root.join(rel))
    }
}

fn io_err(e: std::io::Error) -> RecordingStoreError {
    if e.kind() == std::io::ErrorKind::NotFound {
        RecordingStoreError::NotFound
    } else {
        RecordingStoreError::Io(e.to_string())
    }
}

/// Reads in 64 KiB chunks.
const CHUNK: u64 = 64 * 1024;

#[async_trait]
impl RecordingStore for LocalRecordingStore {
    async fn put(&self, key: &str, data: Bytes) -> Result<u64, RecordingStoreError> {
        let path = self.path_of(key)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io_err)?;
        }
        // Write then rename, so a reader never sees a half-written file.
        let tmp = path.with_extension("partial");
        tokio::fs::write(&tmp, &data).await.map_err(io_err)?;
        tokio::fs::rename(&tmp, &path).await.map_err(io_err)?;
        Ok(data.len() as u64)
    }

    async fn put_file(&self, key: &str, src: &Path) -> Result<u64, RecordingStoreError> {
        let path = self.path_of(key)?;
        let source_err =
            |e: std::io::Error| RecordingStoreError::Io(format!("reading {}: {e}", src.display()));
        let size = tokio::fs::metadata(src).await.map_err(source_err)?.len();
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io_err)?;
        }
        // On the same filesystem a rename is atomic and copies nothing; otherwise copy into a
        // partial file first, so a reader never sees a half-written recording.
        if tokio::fs::rename(src, &path).await.is_err() {
            let tmp = path.with_extension("partial");
            tokio::fs::copy(src, &tmp).await.map_err(source_err)?;
            tokio::fs::rename(&tmp, &path).await.map_err(io_err)?;
        }
        Ok(size)
    }

    async fn size(&self, key: &str) -> Result<u64, RecordingStoreError> {
        let meta = tokio::fs::metadata(self.path_of(key)?)
            .await
            .map_err(io_err)?;
        if !meta.is_file() {
            return Err(RecordingStoreError::NotFound);
        }
        Ok(meta.len())
    }

    async fn read_range(
        &self,
        key: &str,
        start: u64,
        end: u64,
    ) -> Result<ByteStream, RecordingStoreError> {
        if end < start {
            return Err(RecordingStoreError::Io("empty range".into()));
        }
        let mut file = tokio::fs::File::open(self.path_of(key)?)
            .await
            .map_err(io_err)?;
        file.seek(SeekFrom::Start(start)).await.map_err(io_err)?;
        let remaining = end - start + 1;
        let stream =
            futures::stream::unfold((file, remaining), |(mut file, remaining)| async move {
                if remaining == 0 {
                    return None;
                }
                let want = remaining.min(CHUNK) as usize;
                let mut buf = vec![0u8; want];
                match file.read(&mut buf).await {
                    Ok(0) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok(Bytes::from(buf)), (file, remaining - n as u64)))
                    }
                    Err(e) => Some((Err(e), (file, 0))),
                }
            });
        Ok(stream.boxed())
    }

    async fn delete(&self, key: &str) -> Result<(), RecordingStoreError> {
        match tokio::fs::remove_file(self.path_of(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(s: ByteStream) -> Vec<u8> {
        let parts: Vec<_> = s.collect().await;
        parts
            .into_iter()
            .flat_map(|p| p.unwrap().to_vec())
            .collect()
    }

    #[tokio::test]
    async fn put_file_moves_a_spooled_file_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalRecordingStore::new(dir.path().join("store"));
        let src = dir.path().join("spooled.wav");
        std::fs::write(&src, b"RIFF....WAVE").unwrap();
        let key = "recordings/t/c/x.wav";
        assert_eq!(s.put_file(key, &src).await.unwrap(), 12);
        assert_eq!(s.size(key).await.unwrap(), 12);
        assert!(!src.exists(), "moved, not copied");
        assert!(matches!(
            s.put_file(key, &src).await,
            Err(RecordingStoreError::Io(_))
        ));
        assert!(matches!(
            s.put_file("../x.wav", &src).await,
            Err(RecordingStoreError::InvalidKey)
        ));
    }

    #[tokio::test]
    async fn put_size_range_delete() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalRecordingStore::new(dir.path());
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let key = "recordings/t/c/x.wav";
        assert_eq!(
            s.put(key, Bytes::from(data.clone())).await.unwrap(),
            200_000
        );
        assert_eq!(s.size(key).await.unwrap(), 200_000);
        assert_eq!(
            collect(s.read_range(key, 0, 199_999).await.unwrap()).await,
            data
        );
        assert_eq!(
            collect(s.read_range(key, 70_000, 140_001).await.unwrap()).await,
            data[70_000..=140_001]
        );
        s.delete(key).await.unwrap();
        assert!(matches!(
            s.size(key).await,
            Err(RecordingStoreError::NotFound)
        ));
        s.delete(key).await.unwrap();
    }

    #[tokio::test]
    async fn refuses_keys_outside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalRecordingStore::new(dir.path());
        for key in ["../x", "/etc/passwd", "a/../../b", "a\\b", ""] {
            assert!(
                matches!(
                    s.put(key, Bytes::new()).await,
                    Err(RecordingStoreError::InvalidKey)
                ),
                "{key}"
            );
        }
    }
}
