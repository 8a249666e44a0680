//! smsauth: a GraphQL service that signs people in with their mobile number.
//!
//! How a request flows, and where each concept lives:
//!
//! - [`http`] — axum routes (`/graphql`, `/healthz`, `/readyz`), client IP,
//!   bearer token, CORS, limits on bodies and time.
//! - [`graphql`] — the schema of the contract; thin resolvers that parse
//!   arguments into [`domain`] types and make one [`service`] call each.
//! - [`service`] — what each operation does: [`service::sms_codes`],
//!   [`service::accounts`], [`service::sessions`], [`service::throttle`],
//!   [`service::user_view`].
//! - [`codes`] — the code store (Redis or in-process): one-time codes,
//!   cooldowns and every rate limit, each check-and-change atomic.
//! - [`sms`] — SMS providers behind one trait.
//! - [`auth`] — Argon2id password hashing and JWT access tokens.
//! - [`db`] — SeaORM entities and queries (PostgreSQL or SQLite).
//! - [`import_django`] — `smsauth import-django`: users and password hashes
//!   from the Django original.
//! - [`error`] names what went wrong; [`messages`] words it for people, in
//!   English and Chinese.
//! - [`config`], [`rate_limit`], [`telemetry`], [`tls`],
//!   [`startup`], [`state`], [`cli`].

pub mod auth;
pub mod cli;
pub mod codes;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod import_django;
pub mod instruments;
pub mod messages;
pub mod rate_limit;
pub mod service;
pub mod sms;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod tls;
