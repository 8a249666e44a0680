//! A Redis Cluster losing a master (contract §3.2), on a cluster of its own:
//! requests needing the lost slots answer `SERVICE_UNAVAILABLE` within 5 s,
//! the rest keep working, `/readyz` stays 200 naming the degradation, and
//! after the replica takes over everything works again without restarting
//! the instances. A cluster down at start: the service starts, `/readyz` is
//! 503, and it connects once the cluster comes up.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, error_code, eventually, fresh_postgres_database, spawn_app,
};
use crate::redis_cluster::{RedisCluster, seeds_of};

const BOUND: Duration = Duration::from_secs(5);
const PASSWORD: &str = "correct horse battery";

/// Failover and first connection must come by themselves within this.
const RECOVERY: Duration = Duration::from_secs(30);

/// Two instances on `seeds`, one database.
async fn two_instances(seeds: &str) -> Vec<TestApp> {
    let database = fresh_postgres_database().await;
    let prefix = format!("smsauth-test-{}", uuid::Uuid::new_v4().simple());
    let mut apps = Vec::new();
    for _ in 0..2 {
        apps.push(
            spawn_app(Backend::Postgres)
                .database_url(database.clone())
                .redis_prefix(prefix.clone())
                .var("REDIS_CLUSTER_NODES", seeds)
                .var("SMS_RESEND_COOLDOWN_SECS", "0")
                .spawn()
                .await,
        );
    }
    apps
}

/// National numbers whose keys live on the master at `master` (`on == true`) or elsewhere.
fn mobiles(cluster: &RedisCluster, master: usize, on: bool, count: usize) -> Vec<String> {
    (0..10_000)
        .map(|i| format!("1371234{i:04}"))
        .filter(|national| {
            let slot = cluster.slot_of(&format!("+86{national}"));
            (cluster.master_of(slot) == master) == on
        })
        .take(count)
        .collect()
}

async fn timed_send(app: &TestApp, mobile: &str, purpose: &str) -> (Value, Duration) {
    let started = Instant::now();
    let answer = app.send_code(mobile, purpose).await;
    (answer, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn losing_a_master_fails_its_slots_fast_and_heals_after_failover() {
    let cluster = RedisCluster::start(3);
    let apps = two_instances(&cluster.seeds()).await;
    let victim = cluster.master_of(cluster.slot_of("+8613711112222"));
    let lost = mobiles(&cluster, victim, true, 3);
    let kept = mobiles(&cluster, victim, false, 2);

    // Before the kill: a user on each side, each with a live login code.
    for (i, mobile) in [&lost[0], &kept[0]].into_iter().enumerate() {
        apps[0]
            .create_user(&format!("user{i}"), mobile, None, PASSWORD)
            .await;
        let sent = apps[0].send_code(mobile, "LOGIN").await;
        assert_eq!(error_code(&sent), None, "{sent}");
    }
    let lost_code = apps[0].last_code(&format!("+86{}", lost[0]));
    let kept_code = apps[0].last_code(&format!("+86{}", kept[0]));
    let refresh_token = apps[0].login("user1", PASSWORD).await["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();

    // Hold the replica back, so the outage lasts until we let it take over.
    let replica = cluster.replica_of(victim);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("cluster-replica-no-failover")
        .arg("yes")
        .query(&mut cluster.nodes[replica].connection())
        .unwrap();
    let mut cluster = cluster;
    cluster.nodes[victim].kill();

    for app in &apps {
        let (answer, took) = timed_send(app, &lost[1], "REGISTER").await;
        assert_eq!(
            error_code(&answer).as_deref(),
            Some("SERVICE_UNAVAILABLE"),
            "{answer}"
        );
        assert!(took < BOUND, "a request for the lost slots took {took:?}");
        let started = Instant::now();
        let answer = app.login_with_sms(&lost[0], &lost_code).await;
        assert_eq!(
            error_code(&answer).as_deref(),
            Some("SERVICE_UNAVAILABLE"),
            "{answer}"
        );
        assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());

        // The other slots keep working.
        let (answer, took) = timed_send(app, &kept[1], "REGISTER").await;
        assert_eq!(error_code(&answer), None, "{answer}");
        assert!(took < BOUND, "took {took:?}");
        let (status, body) = app.readiness().await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!({ "status": "degraded", "down": ["code_store"] })
        );
    }
    // A code issued before the kill on a surviving master is not lost.
    let answer = apps[1].login_with_sms(&kept[0], &kept_code).await;
    assert_eq!(error_code(&answer), None, "{answer}");
    // Sessions live in the database: refreshing works throughout.
    let answer = apps[1]
        .graphql(
            "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }",
            json!({ "t": refresh_token }),
        )
        .await;
    assert_eq!(error_code(&answer), None, "{answer}");

    // Let the replica take over; no instance is restarted.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("cluster-replica-no-failover")
        .arg("no")
        .query(&mut cluster.nodes[replica].connection())
        .unwrap();
    cluster.wait_until_healthy(Duration::from_secs(30));
    for app in &apps {
        eventually("sending to the lost slots", RECOVERY, || async {
            error_code(&app.send_code(&lost[2], "REGISTER").await).is_none()
        })
        .await;
        eventually("readiness", RECOVERY, || async {
            app.readiness().await == (200, json!({ "status": "ready" }))
        })
        .await;
    }
    // The code on the dead master may have been lost with it (asynchronous
    // replication), but it fails closed: a wrong code is never accepted.
    let wrong = if lost_code == "000000" {
        "111111"
    } else {
        "000000"
    };
    let answer = apps[1].login_with_sms(&lost[0], wrong).await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("INVALID_CODE"),
        "{answer}"
    );
    let answer = apps[1].login_with_sms(&lost[0], &lost_code).await;
    assert!(
        matches!(error_code(&answer).as_deref(), None | Some("INVALID_CODE")),
        "{answer}"
    );
    // And a fresh code for the lost slots works end to end.
    apps[0].send_code(&lost[0], "LOGIN").await;
    let fresh = apps[0].last_code(&format!("+86{}", lost[0]));
    let answer = apps[1].login_with_sms(&lost[0], &fresh).await;
    assert_eq!(error_code(&answer), None, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_service_starts_while_the_cluster_is_down_and_connects_later() {
    let ports = RedisCluster::free_ports(3);
    let apps = two_instances(&seeds_of(&ports)).await;
    let app = &apps[0];
    let (status, body) = app.readiness().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["down"], json!(["code_store"]));
    let (answer, took) = timed_send(app, "13711112222", "REGISTER").await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("SERVICE_UNAVAILABLE"),
        "{answer}"
    );
    assert!(took < BOUND, "took {took:?}");

    let _cluster = tokio::task::spawn_blocking(move || RedisCluster::start_on(&ports))
        .await
        .unwrap();
    eventually("connecting to the cluster", RECOVERY, || async {
        error_code(&app.send_code("13711112222", "REGISTER").await).is_none()
    })
    .await;
    eventually("readiness", RECOVERY, || async {
        app.readiness().await == (200, json!({ "status": "ready" }))
    })
    .await;
}
