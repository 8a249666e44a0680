//! One contract test suite for both code stores (Redis and in-process),
//! driven directly through the `CodeStore` trait with short TTLs.

use std::sync::Arc;
use std::time::Duration;

use smsauth::codes::{
    CodeHash, CodeHasher, CodeStore, IssueOutcome, IssueRequest, LimitOutcome, MemoryCodeStore,
    RedisCodeStore, VerifyOutcome,
};
use smsauth::domain::{Mobile, Region, SmsCode, SmsPurpose};
use smsauth::error::RateLimitReason;
use smsauth::rate_limit::{LimitedAction, RateLimit};

use crate::helpers::{Store, redis_url};
use crate::on_each;

fn store(kind: Store) -> Arc<dyn CodeStore> {
    match kind {
        Store::Memory => Arc::new(MemoryCodeStore::new()),
        Store::Redis => Arc::new(
            RedisCodeStore::connect(
                &redis_url(),
                &format!("smsauth-test-{}", uuid::Uuid::new_v4().simple()),
            )
            .unwrap(),
        ),
        Store::RedisCluster => {
            let seeds = crate::redis_cluster::shared().seeds();
            let seeds: Vec<&str> = seeds.split(',').collect();
            Arc::new(
                RedisCodeStore::connect_cluster(
                    &seeds,
                    None,
                    &format!("smsauth-test-{}", uuid::Uuid::new_v4().simple()),
                )
                .unwrap(),
            )
        }
    }
}

/// Long enough for any test step.
const LEASE: Duration = Duration::from_secs(60);

fn mobile() -> Mobile {
    Mobile::parse(&format!("1371111{:04}", rand_suffix()), Region::CN).unwrap()
}

fn rand_suffix() -> u16 {
    (uuid::Uuid::new_v4().as_u128() % 10_000) as u16
}

fn event() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Issues a code with the suite's default request.
async fn issue(store: &Arc<dyn CodeStore>, m: &Mobile, purpose: SmsPurpose, hash: &CodeHash) {
    store.issue(request(m, purpose, hash)).await.unwrap();
}

/// Tries a code, holding it for [`LEASE`] if it is right.
async fn verify(
    store: &Arc<dyn CodeStore>,
    m: &Mobile,
    purpose: SmsPurpose,
    hash: &CodeHash,
) -> VerifyOutcome {
    store.verify(m, purpose, hash, LEASE).await.unwrap()
}

fn hash_of(mobile: &Mobile, purpose: SmsPurpose, code: &str) -> CodeHash {
    CodeHasher::new(b"test secret").hash(mobile, purpose, &SmsCode::parse(code, 6).unwrap())
}

fn request<'a>(mobile: &'a Mobile, purpose: SmsPurpose, hash: &'a CodeHash) -> IssueRequest<'a> {
    IssueRequest {
        mobile,
        purpose,
        code_hash: hash,
        ttl: Duration::from_secs(60),
        max_attempts: 3,
        cooldown: Duration::ZERO,
        per_mobile: None,
        exempt_from_mobile_limits: false,
    }
}

async fn a_code_is_valid_once(kind: Store) {
    let store = store(kind);
    let m = mobile();
    let right = hash_of(&m, SmsPurpose::Login, "123456");
    assert_eq!(
        store
            .issue(request(&m, SmsPurpose::Login, &right))
            .await
            .unwrap(),
        IssueOutcome::Issued
    );
    assert!(matches!(
        verify(&store, &m, SmsPurpose::Login, &right).await,
        VerifyOutcome::Accepted(_)
    ));
    assert_eq!(
        verify(&store, &m, SmsPurpose::Login, &right).await,
        VerifyOutcome::Rejected {
            attempts_left: None
        }
    );
}

async fn codes_expire(kind: Store) {
    let store = store(kind);
    let m = mobile();
    let right = hash_of(&m, SmsPurpose::Login, "123456");
    let short = IssueRequest {
        ttl: Duration::from_millis(300),
        ..request(&m, SmsPurpose::Login, &right)
    };
    store.issue(short).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        verify(&store, &m, SmsPurpose::Login, &right).await,
        VerifyOutcome::Rejected {
            attempts_left: None
        }
    );
}

async fn a_new_code_replaces_the_old(kind: Store) {
    let store = store(kind);
    let m = mobile();
    let old = hash_of(&m, SmsPurpose::Login, "111111");
    let new = hash_of(&m, SmsPurpose::Login, "222222");
    issue(&store, &m, SmsPurpose::Login, &old).await;
    issue(&store, &m, SmsPurpose::Login, &new).await;
    assert!(matches!(
        verify(&store, &m, SmsPurpose::Login, &old).await,
        VerifyOutcome::Rejected { .. }
    ));
    assert!(matches!(
        verify(&store, &m, SmsPurpose::Login, &new).await,
        VerifyOutcome::Accepted(_)
    ));
}

async fn wrong_tries_exhaust_the_code(kind: Store) {
    let store = store(kind);
    let m = mobile();
    let right = hash_of(&m, SmsPurpose::Register, "123456");
    let wrong = hash_of(&m, SmsPurpose::Register, "654321");
    issue(&store, &m, SmsPurpose::Register, &right).await;
    assert_eq!(
        verify(&store, &m, SmsPurpose::Register, &wrong).await,
        VerifyOutcome::Rejected {
            attempts_left: Some(2)
        }
    );
    assert_eq!(
        verify(&store, &m, SmsPurpose::Register, &wrong).await,
        VerifyOutcome::Rejected {
            attempts_left: Some(1)
        }
    );
    assert_eq!(
        verify(&store, &m, SmsPurpose::Register, &wrong).await,
        VerifyOutcome::Exhausted
    );
    assert_eq!(
        verify(&store, &m, SmsPurpose::Register, &right).await,
        VerifyOutcome::Rejected {
            attempts_left: None
        },
        "destroyed: even the right code fails"
    );
}

async fn a_leased_code_is_held_then_spent_or_handed_back(kind: Store) {
    let store = store(kind);
    let m = mobile();
    let right = hash_of(&m, SmsPurpose::Login, "123456");
    let wrong = hash_of(&m, SmsPurpose::Login, "654321");
    issue(&store, &m, SmsPurpose::Login, &right).await;
    let VerifyOutcome::Accepted(lease) = verify(&store, &m, SmsPurpose::Login, &right).await else {
        panic!("the right code is accepted");
    };
    // While leased: nobody else can use it, and wrong tries still cost.
    assert_eq!(
        verify(&store, &m, SmsPurpose::Login, &right).await,
        VerifyOutcome::Rejected {
            attempts_left: None
        }
    );
    assert_eq!(
        verify(&store, &m, SmsPurpose::Login, &wrong).await,
        VerifyOutcome::Rejected {
            attempts_left: Some(2)
        }
    );
    // Handed back: usable again as it was (minus the wrong try).
    store
        .settle(&m, SmsPurpose::Login, &lease, false)
        .await
        .unwrap();
    let VerifyOutcome::Accepted(lease) = verify(&store, &m, SmsPurpose::Login, &right).await else {
        panic!("the handed-back code works");
    };
    // Spent: gone for good, and a stale lease settles nothing.
    store
        .settle(&m, SmsPurpose::Login, &lease, true)
        .await
        .unwrap();
    store
        .settle(&m, SmsPurpose::Login, &lease, false)
        .await
        .unwrap();
    assert_eq!(
        verify(&store, &m, SmsPurpose::Login, &right).await,
        VerifyOutcome::Rejected {
            attempts_left: None
        }
    );
}

async fn a_lease_never_revives_a_replaced_or_destroyed_code(kind: Store) {
    let store = store(kind);
    let m = mobile();
    let old = hash_of(&m, SmsPurpose::Login, "123456");
    let new = hash_of(&m, SmsPurpose::Login, "111111");
    let wrong = hash_of(&m, SmsPurpose::Login, "654321");
    issue(&store, &m, SmsPurpose::Login, &old).await;
    let VerifyOutcome::Accepted(lease) = verify(&store, &m, SmsPurpose::Login, &old).await else {
        panic!("accepted");
    };
    // A newer code replaces it, then wrong tries destroy the newer one.
    issue(&store, &m, SmsPurpose::Login, &new).await;
    for _ in 0..3 {
        verify(&store, &m, SmsPurpose::Login, &wrong).await;
    }
    store
        .settle(&m, SmsPurpose::Login, &lease, false)
        .await
        .unwrap();
    for hash in [&old, &new] {
        assert_eq!(
            store
                .verify(&m, SmsPurpose::Login, hash, LEASE)
                .await
                .unwrap(),
            VerifyOutcome::Rejected {
                attempts_left: None
            },
            "nothing comes back"
        );
    }
}

async fn a_lease_that_runs_out_counts_as_spent(kind: Store) {
    let store = store(kind);
    let m = mobile();
    let right = hash_of(&m, SmsPurpose::Login, "123456");
    issue(&store, &m, SmsPurpose::Login, &right).await;
    let short = Duration::from_millis(200);
    let VerifyOutcome::Accepted(lease) = store
        .verify(&m, SmsPurpose::Login, &right, short)
        .await
        .unwrap()
    else {
        panic!("accepted");
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    store
        .settle(&m, SmsPurpose::Login, &lease, false)
        .await
        .unwrap();
    assert_eq!(
        verify(&store, &m, SmsPurpose::Login, &right).await,
        VerifyOutcome::Rejected {
            attempts_left: None
        },
        "a request that never settled spent the code"
    );
}

async fn purposes_are_isolated(kind: Store) {
    let store = store(kind);
    let m = mobile();
    let login = hash_of(&m, SmsPurpose::Login, "123456");
    issue(&store, &m, SmsPurpose::Login, &login).await;
    // The same digits for another purpose hash differently and find no code.
    let as_register = hash_of(&m, SmsPurpose::Register, "123456");
    assert!(matches!(
        verify(&store, &m, SmsPurpose::Register, &as_register).await,
        VerifyOutcome::Rejected {
            attempts_left: None
        }
    ));
    assert!(matches!(
        verify(&store, &m, SmsPurpose::Login, &login).await,
        VerifyOutcome::Accepted(_)
    ));
}

async fn the_cooldown_refuses_with_the_time_left(kind: Store) {
    let store = store(kind);
    let m = mobile();
    let h = hash_of(&m, SmsPurpose::Login, "123456");
    let with_cooldown = |purpose| IssueRequest {
        cooldown: Duration::from_secs(1),
        ..request(&m, purpose, &h)
    };
    assert_eq!(
        store.issue(with_cooldown(SmsPurpose::Login)).await.unwrap(),
        IssueOutcome::Issued
    );
    // Across purposes too.
    match store
        .issue(with_cooldown(SmsPurpose::Register))
        .await
        .unwrap()
    {
        IssueOutcome::Refused {
            reason,
            retry_after,
        } => {
            assert_eq!(reason, RateLimitReason::Cooldown);
            assert!(
                retry_after > Duration::from_millis(500) && retry_after <= Duration::from_secs(1),
                "{retry_after:?}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        store
            .issue(with_cooldown(SmsPurpose::Register))
            .await
            .unwrap(),
        IssueOutcome::Issued
    );
}

async fn the_per_mobile_cap_slides(kind: Store) {
    let store = store(kind);
    let m = mobile();
    let h = hash_of(&m, SmsPurpose::Login, "123456");
    let cap = RateLimit::new(2, Duration::from_secs(1));
    let capped = || IssueRequest {
        per_mobile: Some(&cap),
        ..request(&m, SmsPurpose::Login, &h)
    };
    assert_eq!(store.issue(capped()).await.unwrap(), IssueOutcome::Issued);
    assert_eq!(store.issue(capped()).await.unwrap(), IssueOutcome::Issued);
    let IssueOutcome::Refused {
        reason: RateLimitReason::MobileLimit,
        retry_after,
    } = store.issue(capped()).await.unwrap()
    else {
        panic!("the third send in the window is refused, for the per-mobile cap");
    };
    assert!(retry_after <= Duration::from_secs(1) && retry_after > Duration::ZERO);
    // Exempt numbers (test numbers) skip the cap.
    let exempt = IssueRequest {
        exempt_from_mobile_limits: true,
        ..capped()
    };
    assert_eq!(store.issue(exempt).await.unwrap(), IssueOutcome::Issued);
    tokio::time::sleep(retry_after + Duration::from_millis(100)).await;
    assert_eq!(store.issue(capped()).await.unwrap(), IssueOutcome::Issued);
}

async fn limits_count_and_report_retry_after(kind: Store) {
    let store = store(kind);
    let limit = RateLimit::new(3, Duration::from_secs(1));
    let ip = format!("198.51.100.{}", rand_suffix() % 250);
    for _ in 0..3 {
        assert_eq!(
            store
                .hit(LimitedAction::SendPerIp, &ip, &limit, &event())
                .await
                .unwrap(),
            LimitOutcome::Allowed
        );
    }
    let LimitOutcome::Limited { retry_after } = store
        .hit(LimitedAction::SendPerIp, &ip, &limit, &event())
        .await
        .unwrap()
    else {
        panic!("the fourth hit is limited");
    };
    assert!(retry_after <= Duration::from_secs(1));
    // Another action or subject has its own window.
    assert_eq!(
        store
            .hit(LimitedAction::MobileExistsPerIp, &ip, &limit, &event())
            .await
            .unwrap(),
        LimitOutcome::Allowed
    );
    assert_eq!(
        store
            .hit(LimitedAction::SendPerIp, "other", &limit, &event())
            .await
            .unwrap(),
        LimitOutcome::Allowed
    );
    tokio::time::sleep(retry_after + Duration::from_millis(100)).await;
    assert_eq!(
        store
            .hit(LimitedAction::SendPerIp, &ip, &limit, &event())
            .await
            .unwrap(),
        LimitOutcome::Allowed
    );
}

async fn withdraw_removes_only_its_own_code(kind: Store) {
    let store = store(kind);
    let m = mobile();
    let first = hash_of(&m, SmsPurpose::Login, "111111");
    let second = hash_of(&m, SmsPurpose::Login, "222222");
    issue(&store, &m, SmsPurpose::Login, &first).await;
    issue(&store, &m, SmsPurpose::Login, &second).await;
    store.withdraw(&m, SmsPurpose::Login, &first).await.unwrap();
    assert!(matches!(
        verify(&store, &m, SmsPurpose::Login, &second).await,
        VerifyOutcome::Accepted(_)
    ));
    issue(&store, &m, SmsPurpose::Login, &first).await;
    store.withdraw(&m, SmsPurpose::Login, &first).await.unwrap();
    assert!(matches!(
        verify(&store, &m, SmsPurpose::Login, &first).await,
        VerifyOutcome::Rejected {
            attempts_left: None
        }
    ));
}

async fn concurrent_checks_of_one_code_accept_once(kind: Store) {
    let store = store(kind);
    let m = mobile();
    let right = hash_of(&m, SmsPurpose::Login, "123456");
    issue(&store, &m, SmsPurpose::Login, &right).await;
    let handles: Vec<_> = (0..30)
        .map(|_| {
            let (store, m, right) = (store.clone(), m.clone(), right.clone());
            tokio::spawn(async move { verify(&store, &m, SmsPurpose::Login, &right).await })
        })
        .collect();
    let mut accepted = 0;
    for handle in handles {
        if matches!(handle.await.unwrap(), VerifyOutcome::Accepted(_)) {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 1);
}

async fn a_forgotten_event_no_longer_counts(kind: Store) {
    let store = store(kind);
    let limit = RateLimit::new(2, Duration::from_secs(60));
    let subject = event();
    let (first, second) = (event(), event());
    assert_eq!(
        store
            .hit(LimitedAction::LoginFailurePerIp, &subject, &limit, &first)
            .await
            .unwrap(),
        LimitOutcome::Allowed
    );
    assert_eq!(
        store
            .hit(LimitedAction::LoginFailurePerIp, &subject, &limit, &second)
            .await
            .unwrap(),
        LimitOutcome::Allowed
    );
    // Full: a third event is refused (and a refused event does not count).
    assert!(matches!(
        store
            .hit(LimitedAction::LoginFailurePerIp, &subject, &limit, &event())
            .await
            .unwrap(),
        LimitOutcome::Limited { .. }
    ));
    // Forgetting what was never counted changes nothing; forgetting the first
    // event frees exactly one place.
    store
        .forget(LimitedAction::LoginFailurePerIp, &subject, "unknown")
        .await
        .unwrap();
    store
        .forget(LimitedAction::LoginFailurePerIp, &subject, &first)
        .await
        .unwrap();
    assert_eq!(
        store
            .hit(LimitedAction::LoginFailurePerIp, &subject, &limit, &event())
            .await
            .unwrap(),
        LimitOutcome::Allowed
    );
    assert!(matches!(
        store
            .hit(LimitedAction::LoginFailurePerIp, &subject, &limit, &event())
            .await
            .unwrap(),
        LimitOutcome::Limited { .. }
    ));
}

async fn clearing_limits_forgets_a_subject_and_its_pairs(kind: Store) {
    let store = store(kind);
    let limit = RateLimit::new(1, Duration::from_secs(600));
    let account = LimitedAction::LoginFailurePerAccount;
    // Glob characters and Cluster hash-tag braces are only text.
    let user = format!("{}*?[x]{{y}}", event());
    // A longer subject that merely starts with the same text is another account.
    let other_user = format!("{user}x");
    let subjects = [
        user.clone(),
        format!("{user}|203.0.113.7"),
        format!("{user}|::1"),
    ];
    for subject in subjects.iter().chain([&other_user]) {
        store.hit(account, subject, &limit, &event()).await.unwrap();
        assert!(matches!(
            store.hit(account, subject, &limit, &event()).await.unwrap(),
            LimitOutcome::Limited { .. }
        ));
    }
    store
        .hit(LimitedAction::LoginFailurePerIp, &user, &limit, &event())
        .await
        .unwrap();

    store.clear_limits(account, &user).await.unwrap();

    for subject in &subjects {
        assert_eq!(
            store.hit(account, subject, &limit, &event()).await.unwrap(),
            LimitOutcome::Allowed,
            "{subject} is cleared"
        );
    }
    // Another subject, and another action with the same subject, keep their counts.
    assert!(matches!(
        store
            .hit(account, &other_user, &limit, &event())
            .await
            .unwrap(),
        LimitOutcome::Limited { .. }
    ));
    assert!(matches!(
        store
            .hit(LimitedAction::LoginFailurePerIp, &user, &limit, &event())
            .await
            .unwrap(),
        LimitOutcome::Limited { .. }
    ));
    // A subject with no windows is fine.
    store.clear_limits(account, "nobody").await.unwrap();
}

async fn clearing_limits_forgets_every_pair_of_a_subject_with_many(kind: Store) {
    // More pairs than one clearing step takes (an account tried from many networks).
    let store = store(kind);
    let limit = RateLimit::new(1, Duration::from_secs(600));
    let account = LimitedAction::LoginFailurePerAccount;
    let user = event();
    let pairs: Vec<String> = (0..1_200)
        .map(|i| format!("{user}|10.0.{}.{}/32", i / 256, i % 256))
        .collect();
    for pair in &pairs {
        store.hit(account, pair, &limit, &event()).await.unwrap();
    }

    store.clear_limits(account, &user).await.unwrap();

    for pair in &pairs {
        assert_eq!(
            store.hit(account, pair, &limit, &event()).await.unwrap(),
            LimitOutcome::Allowed,
            "{pair} is cleared"
        );
    }
}

on_each!(stores:
    clearing_limits_forgets_a_subject_and_its_pairs,
    clearing_limits_forgets_every_pair_of_a_subject_with_many,
    a_leased_code_is_held_then_spent_or_handed_back,
    a_lease_never_revives_a_replaced_or_destroyed_code,
    a_lease_that_runs_out_counts_as_spent,
    a_forgotten_event_no_longer_counts,
    a_code_is_valid_once,
    codes_expire,
    a_new_code_replaces_the_old,
    wrong_tries_exhaust_the_code,
    purposes_are_isolated,
    the_cooldown_refuses_with_the_time_left,
    the_per_mobile_cap_slides,
    limits_count_and_report_retry_after,
    withdraw_removes_only_its_own_code,
    concurrent_checks_of_one_code_accept_once,
);
