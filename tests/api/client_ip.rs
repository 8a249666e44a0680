//! Who the per-IP limits count (contract §3.1): an IPv6 client by its /64
//! (`IPV6_CLIENT_PREFIX`), and `X-Forwarded-For` entries with ports or
//! garbage walked so that nothing left of garbage is believed.

use serde_json::{Value, json};

use crate::helpers::{Setup, TestApp, error_code, spawn_setup};
use crate::on_each;

const EXISTS: &str = "query { mobileExists(mobile: \"13711112222\") }";

/// `mobileExists` from behind our (trusted, loopback) proxy, which says the
/// request came from `forwarded_for`; the error code, if any.
async fn exists_from(app: &TestApp, forwarded_for: &str) -> Option<String> {
    let answer: Value = app
        .post("/graphql")
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({ "query": EXISTS }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    error_code(&answer)
}

async fn behind_a_proxy(setup: Setup, extra: &[(&'static str, &str)]) -> TestApp {
    let mut builder = spawn_setup(setup)
        .var("MOBILE_EXISTS_LIMIT_PER_IP", "3/1m")
        .var("TRUSTED_PROXIES", "127.0.0.0/8");
    for (key, value) in extra {
        builder = builder.var(key, *value);
    }
    builder.spawn().await
}

const LIMITED: Option<&str> = Some("RATE_LIMITED");

async fn an_ipv6_client_is_its_64(setup: Setup) {
    let app = behind_a_proxy(setup, &[]).await;
    // Four addresses of one /64 share one budget of three, in parallel too.
    let one_64 = [
        "2001:db8:1:2::1",
        "2001:db8:1:2::2",
        "2001:db8:1:2:aaaa:bbbb:cccc:dddd",
        "2001:db8:1:2:ffff:ffff:ffff:ffff",
    ];
    let answers = futures::future::join_all(one_64.iter().map(|ip| exists_from(&app, ip))).await;
    let limited = answers.iter().filter(|a| a.as_deref() == LIMITED).count();
    assert_eq!(limited, 1, "one /64 is one client: {answers:?}");
    // The neighbouring /64 is someone else, and so is an IPv4 client.
    assert_eq!(exists_from(&app, "2001:db8:1:3::1").await, None);
    assert_eq!(exists_from(&app, "198.51.100.7").await, None);
}

async fn ipv6_client_prefix_128_counts_single_addresses(setup: Setup) {
    let app = behind_a_proxy(setup, &[("IPV6_CLIENT_PREFIX", "128")]).await;
    for i in 1..=5 {
        let ip = format!("2001:db8:1:2::{i}");
        assert_eq!(exists_from(&app, &ip).await, None, "{ip}");
    }
    for _ in 0..3 {
        exists_from(&app, "2001:db8:1:2::9").await;
    }
    assert_eq!(
        exists_from(&app, "2001:db8:1:2::9").await.as_deref(),
        LIMITED
    );
}

async fn forwarded_entries_with_ports_are_the_client(setup: Setup) {
    let app = behind_a_proxy(setup, &[]).await;
    // The client forges a new address each time; our proxy appended the
    // real one with its port. The real one is what gets counted.
    for real in ["198.51.100.77:5555", "[2001:db8::9]:443"] {
        let mut answers = Vec::new();
        for forged in 1..=4 {
            answers.push(exists_from(&app, &format!("6.6.6.{forged}, {real}")).await);
        }
        assert_eq!(
            answers.last().unwrap().as_deref(),
            LIMITED,
            "{real} is one client however the left part changes: {answers:?}"
        );
    }
    // A bare entry of the same client shares its budget.
    assert_eq!(exists_from(&app, "198.51.100.77").await.as_deref(), LIMITED);
}

async fn nothing_left_of_garbage_is_believed(setup: Setup) {
    let app = behind_a_proxy(setup, &[]).await;
    // The right-most entry is garbage: the peer (the proxy) is the client,
    // whatever is written left of it.
    let mut answers = Vec::new();
    for forged in 1..=4 {
        answers.push(exists_from(&app, &format!("6.6.6.{forged}, unknown")).await);
    }
    assert_eq!(answers.last().unwrap().as_deref(), LIMITED, "{answers:?}");

    // Garbage in the middle: the good address right of it is the client.
    let app = behind_a_proxy(setup, &[]).await;
    let mut answers = Vec::new();
    for forged in 1..=4 {
        answers.push(exists_from(&app, &format!("6.6.6.{forged}, junk, 198.51.100.8")).await);
    }
    assert_eq!(answers.last().unwrap().as_deref(), LIMITED, "{answers:?}");
}

on_each!(setups:
    an_ipv6_client_is_its_64,
    ipv6_client_prefix_128_counts_single_addresses,
    forwarded_entries_with_ports_are_the_client,
    nothing_left_of_garbage_is_believed,
);
