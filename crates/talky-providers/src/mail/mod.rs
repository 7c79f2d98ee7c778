//! Mail transports: [`SmtpMailer`] (a real SMTP client: STARTTLS or implicit TLS chosen by
//! the URL scheme, credentials in the URL) and [`OutboxMailer`] (the default when no SMTP
//! URL is configured: each message becomes an RFC 5322 `.eml` file in a folder, and its link
//! is logged so a person trying Talky locally can click it).

mod outbox;
mod smtp;

pub use outbox::OutboxMailer;
pub use smtp::{SmtpMailer, SmtpUrlError};

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use talky_core::ports::mail::{MailError, MailMessage};

/// Builds the MIME message both transports send or store.
pub(crate) fn build_message(from: &Mailbox, msg: &MailMessage) -> Result<Message, MailError> {
    let to: Mailbox = msg
        .to
        .parse()
        .map_err(|e| MailError::Invalid(format!("bad recipient: {e}")))?;
    let builder = Message::builder()
        .from(from.clone())
        .to(to)
        .message_id(Some(format!(
            "<{}@{}>",
            uuid::Uuid::new_v4().simple(),
            from.email.domain()
        )))
        .subject(msg.subject.clone());
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(msg.text_body.clone());
    let built = match &msg.html_body {
        Some(html) => builder.multipart(
            MultiPart::alternative().singlepart(text).singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(html.clone()),
            ),
        ),
        None => builder.singlepart(text),
    };
    built.map_err(|e| MailError::Invalid(e.to_string()))
}

/// Parses a `Name <addr>` or bare address used as the sender.
pub fn parse_from(from: &str) -> Result<Mailbox, MailError> {
    from.parse()
        .map_err(|e| MailError::Invalid(format!("bad sender address {from:?}: {e}")))
}
