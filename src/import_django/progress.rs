//! Progress on stderr: a bar (`indicatif`) on a terminal, a plain line every
//! few seconds otherwise (logs, CI, `nohup`), so stdout keeps only the summary.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::Summary;

/// How often a plain progress line is written.
const LINE_EVERY: Duration = Duration::from_secs(5);

pub enum Progress {
    Hidden,
    Bar(ProgressBar),
    Lines {
        read: u64,
        total: Option<u64>,
        started: Instant,
        last: Instant,
    },
}

impl Progress {
    pub fn new(show: bool, total: Option<u64>) -> Self {
        if !show {
            return Self::Hidden;
        }
        if std::io::stderr().is_terminal() {
            let bar = match total {
                Some(total) => ProgressBar::new(total).with_style(
                    ProgressStyle::with_template(
                        "{bar:40} {pos}/{len} rows, {per_sec}, ETA {eta} {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                ),
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{spinner} {pos} rows, {per_sec} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                ),
            };
            bar.enable_steady_tick(Duration::from_millis(200));
            return Self::Bar(bar);
        }
        let now = Instant::now();
        Self::Lines {
            read: 0,
            total,
            started: now,
            last: now,
        }
    }

    pub fn advance(&mut self, rows: u64, summary: &Summary) {
        match self {
            Self::Hidden => {}
            Self::Bar(bar) => {
                bar.inc(rows);
                bar.set_message(format!(
                    "({} imported, {} already present, {} rejected)",
                    summary.imported, summary.already_present, summary.rejected
                ));
            }
            Self::Lines {
                read,
                total,
                started,
                last,
            } => {
                *read += rows;
                if last.elapsed() >= LINE_EVERY {
                    *last = Instant::now();
                    let of = total.map(|t| format!(" of {t}")).unwrap_or_default();
                    eprintln!(
                        "import-django: {read}{of} rows read in {:.0?}: {} imported, {} already present, {} rejected",
                        started.elapsed(),
                        summary.imported,
                        summary.already_present,
                        summary.rejected
                    );
                }
            }
        }
    }

    pub fn finish(self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
