//! The files of `deploy/` are checked as files: the systemd unit by
//! `systemd-analyze verify`, the nginx example by `nginx -t`, each where the
//! tool is installed (a notice says when it is not), and both against the
//! configuration they must agree with.

use std::path::{Path, PathBuf};
use std::process::Command;

use smsauth::config::{Config, Env, variable};

use crate::helpers::smsauth_binary;

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_path(relative)).unwrap()
}

/// The first of these programs that runs, if any.
fn tool(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|program| {
        Command::new(program)
            .arg("--version")
            .output()
            .is_ok_and(|out| out.status.success())
            || Command::new(program)
                .arg("-v")
                .output()
                .is_ok_and(|out| out.status.success())
    })
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("smsauth-{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn default_of(name: &str) -> &'static str {
    variable(name).unwrap().default
}

#[test]
fn the_systemd_unit_is_hardened_and_reads_the_environment_file() {
    let unit = read("deploy/systemd/smsauth.service");
    for line in [
        "ExecStart=/usr/local/bin/smsauth serve",
        "EnvironmentFile=/etc/smsauth/env",
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=smsauth",
        "WorkingDirectory=%S/smsauth",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "RestartPreventExitStatus=2",
        // The hashing threads lower their priority with setpriority, which
        // `~@resources` would refuse with SIGSYS, killing the process at start.
        "SystemCallFilter=setpriority",
        "SystemCallErrorNumber=EPERM",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit has {line:?}");
    }
    // The first filter sets allow mode; later ones add or remove in order, so
    // setpriority is let back in only after `~@resources` took it out.
    let at = |line: &str| unit.lines().position(|l| l == line);
    assert!(
        at("SystemCallFilter=@system-service") < at("SystemCallFilter=~@privileged @resources")
            && at("SystemCallFilter=~@privileged @resources") < at("SystemCallFilter=setpriority"),
        "the filters are in the order that leaves setpriority allowed"
    );
    // The SQLite default is a path relative to the working directory, the
    // state directory: the only place the service may write.
    assert!(default_of("DATABASE_URL").starts_with("sqlite://smsauth.db"));

    let Some(analyze) = tool(&["systemd-analyze"]) else {
        eprintln!("notice: systemd-analyze is not installed; the unit file was not verified");
        return;
    };
    // `verify` wants an executable that exists: the binary these tests run.
    let dir = scratch_dir("systemd");
    let checked = dir.join("smsauth.service");
    let binary = smsauth_binary();
    std::fs::write(
        &checked,
        unit.replace("/usr/local/bin/smsauth", &binary.display().to_string()),
    )
    .unwrap();
    let output = Command::new(analyze)
        .arg("verify")
        .arg(&checked)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    // Unknown keys and bad values are only warnings: any output fails too.
    assert!(
        output.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_nginx_example_matches_the_settings_it_names() {
    let conf = read("deploy/nginx/smsauth.conf");
    // It proxies to the default listener, and to nothing else.
    let upstream = format!("server {};", default_of("LISTEN_ADDR"));
    assert!(conf.contains(&upstream), "upstream {upstream}");
    let proxied: Vec<&str> = conf
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("proxy_pass"))
        .collect();
    assert!(
        !proxied.is_empty() && proxied.iter().all(|l| *l == "proxy_pass http://smsauth;"),
        "{proxied:?}"
    );
    assert!(!conf.contains("location /metrics") && !conf.contains("location = /metrics"));
    // The GraphiQL page behind it loads its files from smsauth too.
    assert!(conf.contains("location /graphiql/assets/ {"));
    // nginx appends the peer it saw, which smsauth believes from a trusted proxy.
    assert!(conf.contains("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"));
    let trusted = conf
        .lines()
        .find_map(|l| {
            l.trim_start_matches(['#', ' '])
                .strip_prefix("TRUSTED_PROXIES=")
        })
        .expect("the file names its TRUSTED_PROXIES");
    let config = Config::from_source(&Env::from_pairs(&[("TRUSTED_PROXIES", trusted)])).unwrap();
    let loopback: Vec<String> = config
        .http
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(loopback, ["127.0.0.1/32", "::1/128"]);
    // The body limit is smsauth's default.
    assert_eq!(default_of("HTTP_BODY_LIMIT_BYTES"), "65536");
    assert!(conf.contains("client_max_body_size 64k;"));

    let nginx_env = std::env::var("SMSAUTH_TEST_NGINX").ok();
    let candidates: Vec<&str> = nginx_env
        .as_deref()
        .into_iter()
        .chain(["nginx", "/usr/sbin/nginx"])
        .collect();
    let Some(nginx) = tool(&candidates) else {
        eprintln!(
            "notice: nginx is not installed; deploy/nginx/smsauth.conf was not checked by nginx -t"
        );
        return;
    };
    // nginx -t, with a throw-away certificate, temp paths and pid in a scratch dir.
    let dir = scratch_dir("nginx");
    let certified =
        rcgen::generate_simple_self_signed(vec!["auth.example.com".to_owned()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let site = dir.join("smsauth.conf");
    std::fs::write(
        &site,
        conf.replace(
            "/etc/ssl/certs/auth.example.com.pem",
            &cert.display().to_string(),
        )
        .replace(
            "/etc/ssl/private/auth.example.com.key",
            &key.display().to_string(),
        ),
    )
    .unwrap();
    let d = dir.display();
    let main = format!(
        "error_log stderr;\npid {d}/nginx.pid;\nevents {{}}\nhttp {{\n  access_log off;\n  \
         client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n  fastcgi_temp_path {d}/tmp;\n  \
         uwsgi_temp_path {d}/tmp;\n  scgi_temp_path {d}/tmp;\n  include {};\n}}\n",
        site.display()
    );
    std::fs::write(dir.join("nginx.conf"), main).unwrap();
    let output = Command::new(nginx)
        .arg("-t")
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "nginx -t: {said}");
    assert!(!said.contains("[warn]"), "nginx -t warns: {said}");
    std::fs::remove_dir_all(dir).ok();
}
