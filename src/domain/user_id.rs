//! User ids: UUIDs (v7, so they sort by creation), opaque to clients.

use std::fmt;

use uuid::Uuid;

use super::{InvalidInput, InvalidReason};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(Uuid);

impl UserId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn parse(input: &str) -> Result<Self, InvalidInput> {
        Uuid::try_parse(input.trim())
            .map(Self)
            .map_err(|_| InvalidInput::new("id", InvalidReason::NotAUserId))
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for UserId {
    fn default() -> Self {
        Self::new()
    }
}

impl From<Uuid> for UserId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
