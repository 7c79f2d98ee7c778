//! Outbound e-mail. Real deployments use SMTP; the default writes `.eml` files to an outbox
//! folder so a person trying Talky locally can click their sign-in link.

use async_trait::async_trait;

/// A message to send. `link` is the actionable URL (magic link), kept separately so the
/// outbox can log it; it is never logged by the SMTP mailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailMessage {
    pub to: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: Option<String>,
    pub link: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail transport failed: {0}")]
    Transport(String),
    #[error("invalid mail message: {0}")]
    Invalid(String),
}

#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, msg: MailMessage) -> Result<(), MailError>;
}
