//! Raw Argon2id hashes per second with the service's parameters, one thread
//! per core, no HTTP, no database: the ceiling for `loginWithPassword` and
//! `registerWithSms` on this machine (`bench/run.sh` prints it).
//!
//! Run: `cargo run --release --example argon2_rate -- [SECONDS]`
//! `-- --hash PASSWORD` prints one PHC hash instead (the benchmark seeds users with it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use smsauth::auth::PasswordHasher;

#[tokio::main]
async fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if std::env::args().nth(1).as_deref() == Some("--hash") {
        let password = std::env::args().nth(2).expect("--hash PASSWORD");
        let hasher = PasswordHasher::new(1, Duration::from_secs(60)).unwrap();
        println!("{}", hasher.hash(&password).await.unwrap());
        return;
    }
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    // The service's own hasher: its parameters, its hashing threads, its permits.
    let hasher = PasswordHasher::new(cores, Duration::from_secs(60)).unwrap();
    let stored = hasher.hash("bench-password-1").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..cores)
        .map(|_| {
            let (hasher, stored) = (hasher.clone(), stored.clone());
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < deadline {
                    assert!(
                        hasher
                            .verify("bench-password-1", Some(stored.clone()))
                            .await
                            .unwrap()
                    );
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker.await.unwrap();
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    println!("ARGON2 {cores} cores {total} verifications {rate:.1}/s");
}
