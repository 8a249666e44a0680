//! GraphiQL needs no CDN (contract §3.9): the page loads only files smsauth
//! serves itself, each with the integrity the browser checks, cached for good.
//! (`tests/browser_e2e.rs` renders it in a real browser with every other
//! origin blocked.)

use base64::Engine as _;
use sha2::{Digest, Sha384};

use crate::helpers::{Backend, TestApp, spawn_app};

/// Every `src="…"` and `href="…"` of the page, with the `integrity` of the
/// same tag (if any).
fn references(page: &str) -> Vec<(String, Option<String>)> {
    let attribute = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        let end = tag[start..].find('"')? + start;
        Some(tag[start..end].to_owned())
    };
    page.split('<')
        .filter_map(|tag| {
            let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
            let url = attribute(tag, "src").or_else(|| attribute(tag, "href"))?;
            Some((url, attribute(tag, "integrity")))
        })
        .collect()
}

async fn graphiql_page(app: &TestApp) -> String {
    let page = app
        .get("/graphql")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-cache");
    page.text().await.unwrap()
}

#[tokio::test]
async fn graphiql_loads_only_same_origin_assets_that_answer_with_their_integrity() {
    let app = spawn_app(Backend::Sqlite).spawn().await;

    let page = graphiql_page(&app).await;

    let references = references(&page);
    let scripts = references
        .iter()
        .filter(|(url, _)| url.ends_with(".js"))
        .count();
    assert_eq!(scripts, 3, "react, react-dom and graphiql: {references:?}");
    assert!(references.iter().any(|(url, _)| url.ends_with(".css")));
    for (url, integrity) in &references {
        if url.starts_with("data:") {
            continue;
        }
        assert!(
            !url.contains("//") && !url.starts_with('/'),
            "{url}: not relative to the page, so not same-origin behind every proxy"
        );
        // Relative to the page at /graphql.
        let asset = app.get(&format!("/{url}")).send().await.unwrap();
        assert_eq!(asset.status(), 200, "{url}");
        assert_eq!(
            asset.headers()["cache-control"],
            "public, max-age=31536000, immutable",
            "{url}"
        );
        let content_type = asset.headers()["content-type"].to_str().unwrap().to_owned();
        let expected_type = if url.ends_with(".css") {
            "text/css"
        } else {
            "text/javascript"
        };
        assert!(
            content_type.starts_with(expected_type),
            "{url}: {content_type}"
        );
        let body = asset.bytes().await.unwrap();
        let digest = base64::engine::general_purpose::STANDARD.encode(Sha384::digest(&body));
        assert_eq!(
            integrity.as_deref(),
            Some(format!("sha384-{digest}").as_str()),
            "{url}: the integrity attribute must be the file's sha384"
        );
        // Production builds only, no source map for developer tools to miss.
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains("sourceMappingURL="), "{url}");
        assert!(!text.contains("react.development"), "{url}");
    }
    // Nothing from a CDN anywhere in the page.
    for cdn in [
        "unpkg.com",
        "jsdelivr",
        "cdnjs",
        "esm.sh",
        "http://",
        "https://",
    ] {
        assert!(!page.contains(cdn), "the page names {cdn}");
    }
}

#[tokio::test]
async fn graphiql_opens_with_an_example_query_and_the_authorization_hint() {
    let app = spawn_app(Backend::Sqlite).spawn().await;

    let page = graphiql_page(&app).await;

    assert!(page.contains("mobileExists(mobile:"), "{page}");
    assert!(page.contains(r#"\"Authorization\": \"Bearer "#), "{page}");
    assert!(page.contains(r#"defaultEditorToolsVisibility: "headers""#));
}

#[tokio::test]
async fn an_asset_url_of_another_build_or_file_is_404() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    let page = graphiql_page(&app).await;
    let (url, _) = references(&page)
        .into_iter()
        .find(|(url, _)| url.ends_with("graphiql.min.js"))
        .unwrap();
    let (prefix, file) = url.rsplit_once('/').unwrap();
    let (root, _digest) = prefix.rsplit_once('/').unwrap();

    let other_build = app
        .get(&format!("/{root}/0123456789abcdef/{file}"))
        .send()
        .await
        .unwrap();
    let other_file = app
        .get(&format!("/{prefix}/../../../Cargo.toml"))
        .send()
        .await
        .unwrap();
    let unknown = app.get(&format!("/{prefix}/x.js")).send().await.unwrap();

    assert_eq!(other_build.status(), 404);
    assert_eq!(other_file.status(), 404);
    assert_eq!(unknown.status(), 404);
}

/// `gzip -dc` of `bytes`.
fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gzip = std::process::Command::new("gzip")
        .arg("-dc")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip is installed");
    // Written from another thread: gzip's output must be read meanwhile.
    let mut stdin = gzip.stdin.take().unwrap();
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = gzip.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success(), "not gzip");
    output.stdout
}

#[tokio::test]
async fn browsers_that_accept_gzip_get_the_same_assets_compressed() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    let page = graphiql_page(&app).await;

    for (url, _) in references(&page)
        .iter()
        .filter(|(url, _)| !url.starts_with("data:"))
    {
        let plain = app.get(&format!("/{url}")).send().await.unwrap();
        assert!(plain.headers().get("content-encoding").is_none(), "{url}");
        let plain = plain.bytes().await.unwrap();
        let gzipped = app
            .get(&format!("/{url}"))
            .header("accept-encoding", "gzip, deflate, br")
            .send()
            .await
            .unwrap();
        assert_eq!(gzipped.status(), 200);
        assert_eq!(gzipped.headers()["content-encoding"], "gzip", "{url}");
        assert_eq!(gzipped.headers()["vary"], "accept-encoding", "{url}");
        let gzipped = gzipped.bytes().await.unwrap();
        assert!(gzipped.len() < plain.len(), "{url}: smaller compressed");
        assert!(
            gunzip(&gzipped) == plain,
            "{url}: the gzip copy is not the file the integrity names (run assets/graphiql/refresh.sh)"
        );
    }
}
