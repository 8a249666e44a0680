//! GraphiQL with no CDN (contract §3.9): the page at `GET /graphql` and the
//! pinned production builds of graphiql, React and ReactDOM it loads, embedded
//! in the binary from `assets/graphiql/` (refreshed by
//! `assets/graphiql/refresh.sh`; `cargo build` never needs npm).
//!
//! Assets are served under [`ASSETS_ROUTE`] at a URL naming their digest, so
//! they can be cached for a year as immutable: another build of an asset has
//! another URL. The page carries each asset's `sha384` as its `integrity`, so
//! a browser refuses a file altered on the way. Browsers that accept gzip get
//! the compressed copy made with each file. Every URL in the page is
//! relative, so it keeps working behind a proxy that serves smsauth under a
//! path prefix.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha384};

/// The route of the embedded files: `/graphiql/assets/<digest>/<file>`.
pub const ASSETS_ROUTE: &str = "/graphiql/assets/{digest}/{file}";

/// One embedded file, and its gzip copy.
struct Embedded {
    file: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    gzip: &'static [u8],
}

/// The files, in the order the page loads them (React before GraphiQL, which
/// reads the globals `React` and `ReactDOM`).
const EMBEDDED: [Embedded; 4] = [
    Embedded {
        file: "graphiql.min.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/graphiql/graphiql.min.css"),
        gzip: include_bytes!("../../assets/graphiql/graphiql.min.css.gz"),
    },
    Embedded {
        file: "react.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/graphiql/react.production.min.js"),
        gzip: include_bytes!("../../assets/graphiql/react.production.min.js.gz"),
    },
    Embedded {
        file: "react-dom.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
        gzip: include_bytes!("../../assets/graphiql/react-dom.production.min.js.gz"),
    },
    Embedded {
        file: "graphiql.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/graphiql/graphiql.min.js"),
        gzip: include_bytes!("../../assets/graphiql/graphiql.min.js.gz"),
    },
];

/// An embedded file with what the page needs to reference it.
struct Asset {
    embedded: &'static Embedded,
    /// The first 16 hex digits of the SHA-384, the URL's version part.
    digest: String,
    /// `sha384-<base64>`, the page's `integrity` attribute.
    integrity: String,
}

impl Asset {
    fn new(embedded: &'static Embedded) -> Self {
        let digest = Sha384::digest(embedded.bytes);
        Self {
            embedded,
            digest: hex::encode(&digest[..8]),
            integrity: format!("sha384-{}", STANDARD.encode(digest)),
        }
    }

    /// Relative to the page at `…/graphql`.
    fn url(&self) -> String {
        format!("graphiql/assets/{}/{}", self.digest, self.embedded.file)
    }
}

/// Hashed once, at the first request that needs them.
static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| EMBEDDED.iter().map(Asset::new).collect());

/// The first query the playground shows; the comments say how to sign in.
const DEFAULT_QUERY: &str = r#"# Welcome to smsauth. Run this with ▶ (Ctrl-Enter):
query MobileExists {
  mobileExists(mobile: "13711112222")
}

# To sign in: sendSmsCode, then registerWithSms,
# loginWithSms (the log SMS provider writes the
# code to the server log) or loginWithPassword.
# Put its accessToken in the Headers tab below,
# then ask who you are:
#
#   query Me { me { id username mobile } }
"#;

/// The Headers tab's first content: where the access token goes.
const DEFAULT_HEADERS: &str = "{\n  \"Authorization\": \"Bearer <accessToken>\"\n}";

/// `GET /graphql` from a browser. Not cached (`no-cache`), so a new release's
/// page names the new assets at once.
pub fn page(introspection: bool) -> Response {
    let title = if introspection {
        "smsauth GraphiQL"
    } else {
        "smsauth GraphiQL (introspection is off: GRAPHQL_INTROSPECTION=false, so no schema docs)"
    };
    let mut head = String::new();
    let mut scripts = String::new();
    for asset in ASSETS.iter() {
        if asset.embedded.file.ends_with(".css") {
            head.push_str(&format!(
                "    <link rel=\"stylesheet\" href=\"{}\" integrity=\"{}\" />\n",
                asset.url(),
                asset.integrity
            ));
        } else {
            scripts.push_str(&format!(
                "    <script src=\"{}\" integrity=\"{}\"></script>\n",
                asset.url(),
                asset.integrity
            ));
        }
    }
    let html = format!(
        r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="robots" content="noindex" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>{title}</title>
    <link rel="icon" href="data:," />
    <style>
      body {{ height: 100%; margin: 0; width: 100%; overflow: hidden; }}
      #graphiql {{ height: 100vh; }}
    </style>
{head}  </head>
  <body>
    <div id="graphiql">Loading GraphiQL…</div>
{scripts}    <script>
      const endpoint = new URL("graphql", document.baseURI).toString();
      ReactDOM.createRoot(document.getElementById("graphiql")).render(
        React.createElement(GraphiQL, {{
          fetcher: GraphiQL.createFetcher({{ url: endpoint }}),
          defaultQuery: {query},
          defaultHeaders: {headers},
          defaultEditorToolsVisibility: "headers",
        }}),
      );
    </script>
  </body>
</html>
"#,
        query = script_string(DEFAULT_QUERY),
        headers = script_string(DEFAULT_HEADERS),
    );
    (
        [
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Html(html),
    )
        .into_response()
}

/// A JavaScript string literal that cannot end the `<script>` it sits in.
fn script_string(text: &str) -> String {
    serde_json::Value::from(text)
        .to_string()
        .replace("</", "<\\/")
}

/// `GET /graphiql/assets/<digest>/<file>`: the embedded file, cached for a
/// year, gzipped when the browser accepts it. A digest that is not the
/// current one is 404: that URL named another build, which this binary does
/// not have.
pub async fn asset(Path((digest, file)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let Some(asset) = ASSETS
        .iter()
        .find(|a| a.embedded.file == file && a.digest == digest)
    else {
        return (StatusCode::NOT_FOUND, "no such GraphiQL asset").into_response();
    };
    let accept = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut response = (
        [
            (header::CONTENT_TYPE, asset.embedded.content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::VARY, "accept-encoding"),
        ],
        if accepts_gzip(accept) {
            asset.embedded.gzip
        } else {
            asset.embedded.bytes
        },
    )
        .into_response();
    if accepts_gzip(accept) {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// Whether an `Accept-Encoding` value allows gzip: `gzip` (or `x-gzip`)
/// listed without `q=0`, or else a `*` without `q=0`.
fn accepts_gzip(accept_encoding: &str) -> bool {
    let codings: Vec<(&str, bool)> = accept_encoding
        .split(',')
        .map(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            (coding, !refused)
        })
        .collect();
    let named = |names: &[&str]| {
        codings
            .iter()
            .find(|(coding, _)| names.iter().any(|n| coding.eq_ignore_ascii_case(n)))
            .map(|(_, allowed)| *allowed)
    };
    named(&["gzip", "x-gzip"])
        .or_else(|| named(&["*"]))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_in_the_page_cannot_close_its_script() {
        assert_eq!(script_string("a</script>b\n"), r#""a<\/script>b\n""#);
    }

    #[test]
    fn gzip_is_sent_only_to_clients_that_accept_it() {
        assert!(accepts_gzip("gzip, deflate, br, zstd"));
        assert!(accepts_gzip("br;q=1.0, GZIP;q=0.5"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip(""));
        assert!(!accepts_gzip("br, deflate"));
        assert!(!accepts_gzip("gzip;q=0, br"));
        assert!(!accepts_gzip("gzipped"));
        assert!(!accepts_gzip("gzip;q=0, *"));
    }

    #[test]
    fn react_loads_before_graphiql_which_reads_its_globals() {
        let order: Vec<&str> = EMBEDDED.iter().map(|e| e.file).collect();
        let position = |file| order.iter().position(|f| *f == file);
        assert!(position("react.production.min.js") < position("react-dom.production.min.js"));
        assert!(position("react-dom.production.min.js") < position("graphiql.min.js"));
    }
}
