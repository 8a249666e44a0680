//! The example frontend (`examples/web`) and GraphiQL in a real browser:
//! Debian's Chromium driven by playwright-core (`tests/browser/e2e.mjs`),
//! against the real smsauth binary. Needs `node`/`npm` and `chromium`
//! (`CHROMIUM` names another executable); without them this test fails,
//! it never skips. `.ci/run` installs both.
//!
//! Both npm projects are copied to a scratch folder and installed there with
//! `npm ci` (the npm cache makes reruns quick), so the repository tree gets
//! no `node_modules`. The screenshots and smsauth's database stay in that
//! folder; their paths are printed (`--nocapture` shows them).

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The whole run (npm ci included) must stay well inside CI's budget.
const DEADLINE: Duration = Duration::from_secs(180);

fn smsauth_binary() -> PathBuf {
    std::env::var_os("SMSAUTH_TEST_BINARY").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_smsauth")),
        PathBuf::from,
    )
}

fn chromium() -> PathBuf {
    let path =
        std::env::var_os("CHROMIUM").map_or_else(|| "/usr/bin/chromium".into(), PathBuf::from);
    assert!(
        path.exists(),
        "the browser e2e needs Chromium at {} (apt-get install chromium, or set CHROMIUM)",
        path.display()
    );
    path
}

fn require(tool: &str) {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "the browser e2e needs `{tool}` on PATH (apt-get install nodejs npm)"
    );
}

/// Copies a project's files, without what npm and Vite write.
fn copy_project(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "node_modules" || name == "dist" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_project(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn npm_ci(dir: &Path) -> std::process::Child {
    Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefer-offline"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn the_example_app_and_graphiql_work_in_a_real_browser() {
    let started = Instant::now();
    require("node");
    require("npm");
    let chromium = chromium();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = std::env::temp_dir().join(format!("smsauth-browser-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let (web, driver, out) = (
        scratch.join("web"),
        scratch.join("browser"),
        scratch.join("out"),
    );
    copy_project(&repo.join("examples/web"), &web);
    copy_project(&repo.join("tests/browser"), &driver);
    std::fs::create_dir_all(&out).unwrap();

    let (mut web_ci, mut driver_ci) = (npm_ci(&web), npm_ci(&driver));
    assert!(
        web_ci.wait().unwrap().success(),
        "npm ci in examples/web failed"
    );
    assert!(
        driver_ci.wait().unwrap().success(),
        "npm ci in tests/browser failed"
    );
    println!("npm ci: {:.1} s", started.elapsed().as_secs_f64());

    // In a process group of its own, so a timeout also ends the smsauth and
    // Chromium it started.
    let mut e2e = Command::new("node")
        .process_group(0)
        .arg(driver.join("e2e.mjs"))
        .env("SMSAUTH_BIN", smsauth_binary())
        .env("WEB_DIR", &web)
        .env("OUT_DIR", &out)
        .env("CHROMIUM", &chromium)
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = e2e.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let group = format!("-{}", e2e.id());
            Command::new("kill")
                .args(["-KILL", "--", &group])
                .status()
                .ok();
            e2e.wait().ok();
            panic!("the browser e2e took over {} s", DEADLINE.as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // The installed packages are large; the screenshots and logs stay.
    let _ = std::fs::remove_dir_all(web.join("node_modules"));
    let _ = std::fs::remove_dir_all(driver.join("node_modules"));
    assert!(
        status.success(),
        "the browser e2e failed ({status}); files in {}",
        out.display()
    );
    println!(
        "browser e2e passed in {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        out.display()
    );
}
