//! The persistence port. `Store` is the sum of per-area traits so each area (accounts,
//! campaigns, calls, …) can be read and implemented on its own. Every tenant-scoped method
//! takes the `TenantId` first and treats a foreign id exactly like a missing one.
//! Platform-wide queries live in [`PlatformAdminStore`], named so its callers stand out.

mod accounts;
mod admin;
mod calls;
mod campaigns;
mod clients;
mod dnc;
mod leads;
mod page;
mod reports;
mod voice;

pub use accounts::*;
pub use admin::*;
pub use calls::*;
pub use campaigns::*;
pub use clients::*;
pub use dnc::*;
pub use leads::*;
pub use page::*;
pub use reports::*;
pub use voice::*;

/// Errors every store method may return.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No row (or a row of another tenant).
    #[error("not found")]
    NotFound,
    /// A uniqueness or state conflict; the message is safe to show to the user.
    #[error("{0}")]
    Conflict(String),
    /// A magic link that is unknown, used or expired (A4: one error for all three).
    #[error("invalid or expired link")]
    InvalidLink,
    /// The database cannot be reached.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a corrupt row. Logged, never shown.
    #[error("database error: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything the server needs from persistence.
pub trait Store:
    AccountStore
    + PlatformAdminStore
    + CampaignStore
    + LeadStore
    + ClientStore
    + DncStore
    + CallStore
    + ReportStore
    + VoiceCallStore
    + Send
    + Sync
    + 'static
{
}

impl<T> Store for T where
    T: AccountStore
        + PlatformAdminStore
        + CampaignStore
        + LeadStore
        + ClientStore
        + DncStore
        + CallStore
        + ReportStore
        + VoiceCallStore
        + Send
        + Sync
        + 'static
{
}
