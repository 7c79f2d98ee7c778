//! Typed ids. Each entity has its own newtype over a UUID so a `CampaignId` can never be
//! passed where a `TenantId` is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random (v4) id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    )*};
}

id_type!(
    /// A business using Talky.
    TenantId,
    /// A person who can sign in.
    UserId,
    /// A server-side login session (the JWT's `sid`).
    SessionId,
    /// A calling campaign.
    CampaignId,
    /// A lead (contact) of a campaign.
    LeadId,
    /// A call attempt.
    CallId,
    /// A dialer job (one per lead while active).
    JobId,
    /// A call recording.
    RecordingId,
    /// A tenant's client (address-book entry).
    ClientId,
    /// A magic-link row.
    AuthLinkId,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_strings() {
        let id = CampaignId::new();
        let parsed: CampaignId = id.to_string().parse().unwrap();
        assert_eq!(id, parsed);
        assert!("not-a-uuid".parse::<CampaignId>().is_err());
    }
}
