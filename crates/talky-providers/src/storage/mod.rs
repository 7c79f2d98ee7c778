//! Recording storage backends. The local directory is the default; an S3-compatible
//! backend can implement the same `RecordingStore` port.

mod local;

pub use local::LocalRecordingStore;
