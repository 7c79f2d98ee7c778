//! SMTP delivery through lettre. The URL picks the security mode:
//! `smtp://` (plain, for a local relay), `smtp+starttls://` or `smtp://…?tls=starttls`
//! (STARTTLS, port 587 by default) and `smtps://` (implicit TLS, port 465 by default).
//! Credentials ride in the URL: `smtps://user:pass@mail.example.com`.

use super::build_message;
use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use talky_core::ports::mail::{MailError, MailMessage, Mailer};

/// Why an SMTP URL was rejected at startup.
#[derive(Debug, thiserror::Error)]
#[error("invalid smtp_url: {0}")]
pub struct SmtpUrlError(String);

/// A real SMTP client.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmtpMailer")
    }
}

impl SmtpMailer {
    /// Builds the transport from a URL (see the module docs). No connection is made yet.
    pub fn from_url(url: &str, from: Mailbox) -> Result<Self, SmtpUrlError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| SmtpUrlError(e.to_string()))?;
        let host = parsed
            .host_str()
            .ok_or_else(|| SmtpUrlError("missing host".into()))?
            .to_string();
        let tls_param = parsed
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.to_string());
        let builder = match (parsed.scheme(), tls_param.as_deref()) {
            ("smtps", _) => AsyncSmtpTransport::<Tokio1Executor>::relay(&host)
                .map_err(|e| SmtpUrlError(e.to_string()))?,
            ("smtp+starttls", _) | ("smtp", Some("starttls")) => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)
                    .map_err(|e| SmtpUrlError(e.to_string()))?
            }
            ("smtp", None | Some("none")) => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host).port(25)
            }
            (scheme, tls) => {
                return Err(SmtpUrlError(format!(
                    "unsupported scheme {scheme:?} / tls={tls:?}; use smtp, smtp+starttls or smtps"
                )))
            }
        };
        let mut builder = match parsed.port() {
            Some(p) => builder.port(p),
            None => builder,
        };
        if !parsed.username().is_empty() {
            let user = percent_decode(parsed.username());
            let pass = percent_decode(parsed.password().unwrap_or(""));
            builder = builder.credentials(Credentials::new(user, pass));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, msg: MailMessage) -> Result<(), MailError> {
        let message = build_message(&self.from, &msg)?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| MailError::Transport(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    #[test]
    fn url_schemes() {
        let from: Mailbox = "a@b.co".parse().unwrap();
        assert!(SmtpMailer::from_url("smtps://u:p@mail.example.com", from.clone()).is_ok());
        assert!(
            SmtpMailer::from_url("smtp+starttls://mail.example.com:2587", from.clone()).is_ok()
        );
        assert!(SmtpMailer::from_url("smtp://localhost:2525", from.clone()).is_ok());
        assert!(SmtpMailer::from_url("http://x", from.clone()).is_err());
        assert!(SmtpMailer::from_url("not a url", from).is_err());
        assert_eq!(percent_decode("a%40b%2"), "a@b%2");
    }

    /// A minimal SMTP server: enough of RFC 5321 for one plain delivery.
    #[tokio::test]
    async fn delivers_to_a_real_smtp_conversation() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            let (r, mut w) = sock.into_split();
            let mut lines = BufReader::new(r).lines();
            w.write_all(b"220 mock ESMTP\r\n").await.unwrap();
            let mut data = String::new();
            let mut in_data = false;
            let mut rcpt = String::new();
            while let Some(line) = lines.next_line().await.unwrap() {
                if in_data {
                    if line == "." {
                        in_data = false;
                        w.write_all(b"250 queued\r\n").await.unwrap();
                    } else {
                        data.push_str(&line);
                        data.push('\n');
                    }
                    continue;
                }
                let upper = line.to_ascii_uppercase();
                if upper.starts_with("EHLO") {
                    w.write_all(b"250-mock\r\n250 8BITMIME\r\n").await.unwrap();
                } else if upper.starts_with("MAIL FROM") {
                    w.write_all(b"250 ok\r\n").await.unwrap();
                } else if upper.starts_with("RCPT TO") {
                    rcpt = line.clone();
                    w.write_all(b"250 ok\r\n").await.unwrap();
                } else if upper == "DATA" {
                    in_data = true;
                    w.write_all(b"354 go\r\n").await.unwrap();
                } else if upper == "QUIT" {
                    w.write_all(b"221 bye\r\n").await.unwrap();
                    break;
                } else {
                    w.write_all(b"250 ok\r\n").await.unwrap();
                }
            }
            (rcpt, data)
        });
        let mailer = SmtpMailer::from_url(
            &format!("smtp://127.0.0.1:{port}"),
            "Talky <no-reply@talky.local>".parse().unwrap(),
        )
        .unwrap();
        mailer
            .send(MailMessage {
                to: "ann@example.com".into(),
                subject: "Your sign-in link".into(),
                text_body: "Open the link".into(),
                html_body: None,
                link: Some("http://x".into()),
            })
            .await
            .unwrap();
        drop(mailer);
        let (rcpt, data) = server.await.unwrap();
        assert!(rcpt.contains("ann@example.com"), "{rcpt}");
        assert!(data.contains("Subject: Your sign-in link"), "{data}");
    }
}
