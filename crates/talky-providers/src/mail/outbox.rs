//! The outbox: messages written as `.eml` files, named so that names sort by time.

use super::build_message;
use async_trait::async_trait;
use lettre::message::Mailbox;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use talky_core::ports::mail::{MailError, MailMessage, Mailer};

/// Writes each message to `<dir>/<utc timestamp>-<seq>.eml` and logs its link.
pub struct OutboxMailer {
    dir: PathBuf,
    from: Mailbox,
    seq: AtomicU64,
}

impl OutboxMailer {
    pub fn new(dir: impl Into<PathBuf>, from: Mailbox) -> Self {
        Self {
            dir: dir.into(),
            from,
            seq: AtomicU64::new(0),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, msg: MailMessage) -> Result<(), MailError> {
        let message = build_message(&self.from, &msg)?;
        let bytes = message.formatted();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "{}-{:06}.eml",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
            seq
        );
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| MailError::Transport(format!("cannot create outbox: {e}")))?;
        let path = self.dir.join(name);
        // Write under a temporary name and rename, so readers never see half a message.
        let tmp = path.with_extension("eml.tmp");
        tokio::fs::write(&tmp, &bytes)
            .await
            .map_err(|e| MailError::Transport(format!("cannot write outbox file: {e}")))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| MailError::Transport(format!("cannot write outbox file: {e}")))?;
        match &msg.link {
            Some(link) => {
                tracing::info!(to = %msg.to, file = %path.display(), %link, "mail written to outbox (no SMTP configured); open the link to continue")
            }
            None => tracing::info!(to = %msg.to, file = %path.display(), "mail written to outbox"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_sortable_rfc5322_files() {
        let dir = tempfile::tempdir().unwrap();
        let m = OutboxMailer::new(dir.path(), "Talky <no-reply@talky.local>".parse().unwrap());
        for i in 0..3 {
            m.send(MailMessage {
                to: "ann@example.com".into(),
                subject: format!("Sign in {i}"),
                text_body: format!("Open http://x/auth/verify?token=t{i}"),
                html_body: Some("<p>hi</p>".into()),
                link: Some(format!("http://x/auth/verify?token=t{i}")),
            })
            .await
            .unwrap();
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 3);
        assert!(names.iter().all(|n| n.ends_with(".eml")));
        let sorted = {
            let mut s = names.clone();
            s.sort();
            s
        };
        // Sorting by name gives the sending order.
        for (i, n) in sorted.iter().enumerate() {
            let body = std::fs::read_to_string(dir.path().join(n)).unwrap();
            assert!(body.contains(&format!("Subject: Sign in {i}")), "{n}");
        }
        let first = std::fs::read_to_string(dir.path().join(&sorted[0])).unwrap();
        assert!(first.contains("Subject: Sign in 0"), "{first}");
        assert!(first.contains("To: ann@example.com"));
        assert!(first.contains("From: Talky <no-reply@talky.local>"));
        assert!(first.contains("Date: "));
        assert!(first.contains("Message-ID: "));
        assert!(first.contains("token=t0"));
    }

    #[tokio::test]
    async fn rejects_bad_recipient() {
        let dir = tempfile::tempdir().unwrap();
        let m = OutboxMailer::new(dir.path(), "a@b.co".parse().unwrap());
        let err = m
            .send(MailMessage {
                to: "not an address".into(),
                subject: "x".into(),
                text_body: "y".into(),
                html_body: None,
                link: None,
            })
            .await
            .unwrap_err();
        assert!(matches!(err, MailError::Invalid(_)));
    }
}
