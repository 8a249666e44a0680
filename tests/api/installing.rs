//! Setting up without a checkout: the installed binary runs from any folder,
//! reads `.env` there, keeps the SQLite default there, prints a GraphiQL URL
//! one can click, and `--help` says where the settings are explained.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::helpers::{run_to_exit, smsauth_binary, smsauth_command};

#[test]
fn help_lists_the_commands_and_names_the_readmes_configuration_section() {
    let output = run_to_exit(&mut smsauth_command(&["--help"]));
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for command in ["serve", "migrate", "schema", "users", "sms-guard"] {
        assert!(help.contains(command), "--help lists {command}: {help}");
    }
    assert!(
        help.contains("README's \"Configuration\" section") && help.contains(".env.example"),
        "{help}"
    );
}

#[test]
fn the_binary_runs_from_any_folder_with_its_dotenv_and_prints_a_clickable_url() {
    // Arrange: an empty folder with only a .env, and no variable in the environment.
    let dir = std::env::temp_dir().join(format!("smsauth-anywhere-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(".env"),
        "# from .env.example\nLISTEN_ADDR=0.0.0.0:0\nRUST_LOG=info\n",
    )
    .unwrap();

    // Act
    let mut child = Running(
        Command::new(smsauth_binary())
            .env_clear()
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut log = BufReader::new(child.0.stdout.take().unwrap());
    let listening = loop {
        let mut line = String::new();
        if log.read_line(&mut line).unwrap() == 0 {
            panic!("exited before listening");
        }
        if line.contains("smsauth listening") {
            break line;
        }
    };
    std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));

    // Assert: the wildcard address is shown as one a browser on this machine opens.
    let field = |name: &str| {
        let at = listening
            .find(&format!("{name}="))
            .unwrap_or_else(|| panic!("{name}= in {listening}"));
        listening[at + name.len() + 1..]
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    };
    let addr = field("addr");
    let port = addr
        .strip_prefix("0.0.0.0:")
        .expect("listens on LISTEN_ADDR of .env");
    let url = field("graphiql");
    assert_eq!(url, format!("http://127.0.0.1:{port}/graphql"));
    smsauth::tls::install_crypto_provider();
    let page = std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async move {
                let response = reqwest::Client::new()
                    .get(&url)
                    .header("accept", "text/html")
                    .send()
                    .await
                    .unwrap();
                (response.status(), response.text().await.unwrap())
            })
    })
    .join()
    .unwrap();
    assert_eq!(page.0, 200);
    assert!(page.1.contains("GraphiQL"), "the URL opens GraphiQL");
    // The SQLite default lives in the folder it runs in.
    assert!(
        dir.join("smsauth.db").exists(),
        "smsauth.db in {}",
        dir.display()
    );

    drop(child);
    std::fs::remove_dir_all(&dir).ok();
}

/// The server, stopped when the test ends, failed or not.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}
