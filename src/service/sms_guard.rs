//! `smsauth sms-guard`: what an operator sees of the SMS budget and the
//! pumping guard, and lifting a pause. Acts on the shared store, so it sees
//! what every instance counted.

use std::fmt::Write as _;

use crate::codes::CodeStore;
use crate::codes::budget::GuardStatus;
use crate::config::Config;
use crate::error::retry_after_secs;

/// Budget use per window and the paused blocks with the time left, as text.
pub async fn status(store: &dyn CodeStore, config: &Config) -> anyhow::Result<String> {
    let status = store
        .budget_status(config.budget.global.as_ref(), &config.budget.regions)
        .await?;
    Ok(render(&status))
}

fn render(status: &GuardStatus) -> String {
    let mut out = String::from("SMS budget (sent per window):\n");
    if status.windows.is_empty() {
        out.push_str("  no budget configured\n");
    }
    for usage in &status.windows {
        let percent = usage.used * 100 / u64::from(usage.window.count.max(1));
        let _ = writeln!(
            out,
            "  {:<12} {:>6} / {:<6} per {:>6} s  ({percent} %)",
            usage.scope.to_string(),
            usage.used,
            usage.window.count,
            usage.window.length.as_secs(),
        );
    }
    out.push_str("Paused blocks:\n");
    if status.paused.is_empty() {
        out.push_str("  none\n");
    }
    for paused in &status.paused {
        let _ = writeln!(
            out,
            "  {:<16} {} s left",
            paused.block,
            retry_after_secs(paused.left)
        );
    }
    out
}

/// Ends the pause of `block` and clears its counts; says what it did.
pub async fn lift(store: &dyn CodeStore, block: &str) -> anyhow::Result<String> {
    let block = block.trim();
    anyhow::ensure!(
        block.starts_with('+') && block.len() > 1 && block[1..].chars().all(|c| c.is_ascii_digit()),
        "a block is written as `sms-guard status` shows it, e.g. +861371111"
    );
    Ok(if store.lift_pause(block).await? {
        format!("lifted the pause of {block}; its counts start afresh\n")
    } else {
        format!("{block} was not paused; its counts start afresh\n")
    })
}
