//! talky-voice

pub mod audio;
