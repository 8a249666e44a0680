//! The one integration-test binary: the real app on a random port, over real
//! HTTP, against a fresh PostgreSQL database or SQLite file, with Redis or the
//! in-process code store. `TEST_LOG=1` shows the app's logs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;
mod redis_cluster;

mod abuse;
mod aliyun;
mod architecture;
mod bad_input;
mod client_ip;
mod cluster_failover;
mod code_spending;
mod code_store;
mod config_bounds;
mod deploy;
mod env_example;
mod failover;
mod fake_aliyun;
mod fake_provider;
mod fake_tencent;
mod faults;
mod graphiql;
mod graphql_http;
mod graphql_spec;
mod import_django;
mod installing;
mod jwks;
mod legacy_passwords;
mod load;
mod login_password;
mod logs;
mod me_and_users;
mod messages;
mod metrics;
mod mobile_exists;
mod provider_checks;
mod redis_tls;
mod scale_out;
mod schema;
mod sessions;
mod shutdown;
mod sms_budget;
mod sms_codes;
mod tencent;
mod transport;
mod users_cli;
