//! The service's metrics (Prometheus text format, on `METRICS_ADDR` only):
//! every series of the contract, each recorded by one method here, called
//! from the layer that knows the fact once (the GraphQL boundary, the send
//! path, the place a code is spent, sign-in, readiness).
//!
//! Each application has its own recorder rather than the process-global one
//! of the `metrics` facade, so that several instances in one process (the
//! tests) count separately. Label values only ever come from closed sets
//! (schema field names, error codes, provider names), so no request can
//! create a series.

use std::time::Duration;

use metrics::{Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

use crate::rate_limit::RateLimit;

const METADATA: Metadata<'static> = Metadata::new("smsauth", Level::INFO, Some(module_path!()));

/// Histogram buckets fit for sign-in latencies: 1 ms to 10 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0,
];

const OPERATION_DURATION: &str = "smsauth_graphql_operation_duration_seconds";

pub struct Instruments {
    recorder: Option<PrometheusRecorder>,
    process: metrics_process::Collector,
}

impl Instruments {
    /// Records nothing (no `METRICS_ADDR`).
    pub fn disabled() -> Self {
        Self {
            recorder: None,
            process: metrics_process::Collector::default(),
        }
    }

    /// Records for a Prometheus scrape.
    pub fn prometheus() -> anyhow::Result<Self> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(OPERATION_DURATION.to_owned()),
                &LATENCY_BUCKETS,
            )?
            .build_recorder();
        let process = metrics_process::Collector::default();
        metrics::with_local_recorder(&recorder, || process.describe());
        Ok(Self {
            recorder: Some(recorder),
            process,
        })
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>, by: u64) {
        if let Some(recorder) = &self.recorder {
            recorder
                .register_counter(&Key::from_parts(name, labels), &METADATA)
                .increment(by);
        }
    }

    /// One root field of a GraphQL operation ran: `outcome` is `ok` or its error code.
    pub fn operation(&self, operation: &str, outcome: &'static str, took: Duration) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        let operation = Label::new("operation", operation.to_owned());
        recorder
            .register_counter(
                &Key::from_parts(
                    "smsauth_graphql_operations_total",
                    vec![operation.clone(), Label::new("outcome", outcome)],
                ),
                &METADATA,
            )
            .increment(1);
        recorder
            .register_histogram(
                &Key::from_parts(OPERATION_DURATION, vec![operation]),
                &METADATA,
            )
            .record(took.as_secs_f64());
    }

    /// A provider answered a send (`sent`), or failed it; `fee` in billed segments.
    pub fn sms_attempt(
        &self,
        provider: &'static str,
        purpose: &'static str,
        sent: bool,
        fee: Option<i32>,
    ) {
        let status = if sent { "sent" } else { "failed" };
        self.counter(
            "smsauth_sms_sent_total",
            vec![
                Label::new("provider", provider),
                Label::new("purpose", purpose),
                Label::new("status", status),
            ],
            1,
        );
        if let Some(fee) = fee.and_then(|fee| u64::try_from(fee).ok()) {
            self.counter(
                "smsauth_sms_fee_total",
                vec![Label::new("provider", provider)],
                fee,
            );
        }
    }

    /// A code was spent by the operation it authorised.
    pub fn code_verified(&self, purpose: &'static str) {
        self.counter(
            "smsauth_sms_codes_verified_total",
            vec![Label::new("purpose", purpose)],
            1,
        );
    }

    /// A send was refused to protect the SMS bill (`GLOBAL_LIMIT`, `REGION_LIMIT`, `SMS_GUARD`).
    pub fn sms_guard_blocked(&self, reason: &'static str) {
        self.counter(
            "smsauth_sms_guard_blocked_total",
            vec![Label::new("reason", reason)],
            1,
        );
    }

    /// A session was issued (`sms`, `password`, `register`, `refresh`).
    pub fn session_issued(&self, method: &'static str) {
        self.counter(
            "smsauth_sessions_issued_total",
            vec![Label::new("method", method)],
            1,
        );
    }

    /// Whether a dependency (`database`, `code_store`) answered its last check.
    pub fn dependency_up(&self, dependency: &'static str, up: bool) {
        if let Some(recorder) = &self.recorder {
            recorder
                .register_gauge(
                    &Key::from_parts(
                        "smsauth_dependency_up",
                        vec![Label::new("dependency", dependency)],
                    ),
                    &METADATA,
                )
                .set(if up { 1.0 } else { 0.0 });
        }
    }

    /// The configured `SMS_GLOBAL_LIMIT`, one gauge per window, so that an
    /// alert can divide the sends of a window by its budget. Set once at start.
    pub fn sms_global_limit(&self, limit: Option<&RateLimit>) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        for window in limit.map(RateLimit::windows).unwrap_or_default() {
            recorder
                .register_gauge(
                    &Key::from_parts(
                        "smsauth_sms_global_limit",
                        vec![Label::new(
                            "window_seconds",
                            window.length.as_secs().to_string(),
                        )],
                    ),
                    &METADATA,
                )
                .set(f64::from(window.count));
        }
    }

    /// The scrape: process metrics read now, then every series.
    pub fn render(&self) -> Option<String> {
        let recorder = self.recorder.as_ref()?;
        metrics::with_local_recorder(recorder, || self.process.collect());
        Some(recorder.handle().render())
    }
}
