use std::net::SocketAddr;
use std::time::Duration;

use async_graphql::{BatchRequest, BatchResponse, Pos, Request, Response, ServerError};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::IntoResponse;

use super::HttpState;
use super::{client_ip, graphiql};
use crate::error::{AppError, INTERNAL_SERVER_ERROR, RequestError};
use crate::graphql::{BearerToken, GetRequest, localize, new_user_loader};
use crate::messages::{Language, RequestProblem};
use crate::state::RequestMeta;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// `POST /graphql`: one operation or a batch, as JSON.
pub async fn post(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> axum::response::Response {
    let Ok(body) = body else {
        return bad_request(
            &headers,
            StatusCode::PAYLOAD_TOO_LARGE,
            RequestProblem::BodyTooLarge,
        );
    };
    let batch = match parse_body(&headers, &body, state.app.config.graphql.max_batch) {
        Ok(batch) => batch,
        Err(problem) => return bad_request(&headers, StatusCode::BAD_REQUEST, problem),
    };
    let batch = match batch {
        BatchRequest::Single(request) => {
            BatchRequest::Single(with_request_data(&state, peer, &headers, request))
        }
        BatchRequest::Batch(requests) => BatchRequest::Batch(
            requests
                .into_iter()
                .map(|request| with_request_data(&state, peer, &headers, request))
                .collect(),
        ),
    };
    respond(&headers, state.schema.execute_batch(batch).await)
}

/// `GET /graphql`: a query in the URL (never a mutation), or GraphiQL for a browser.
pub async fn get(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
) -> axum::response::Response {
    let query_string = uri.query().unwrap_or_default();
    let has_operation = query_string
        .split('&')
        .any(|pair| pair.starts_with("query=") || pair.starts_with("extensions="));
    if !has_operation {
        return graphiql::page(state.app.config.graphql.introspection);
    }
    let request = match async_graphql::http::parse_query_string(query_string) {
        Ok(request) => request,
        Err(_) => {
            return bad_request(
                &headers,
                StatusCode::BAD_REQUEST,
                RequestProblem::MalformedGet,
            );
        }
    };
    let request = with_request_data(&state, peer, &headers, request).data(GetRequest);
    let response = state.schema.execute(request).await;
    let method_not_allowed = response
        .errors
        .iter()
        .any(|e| RequestError::of(e) == Some(RequestError::MutationOverGet));
    let mut http = respond(&headers, BatchResponse::Single(response));
    if method_not_allowed {
        *http.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        http.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    http
}

fn parse_body(
    headers: &HeaderMap,
    body: &[u8],
    max_batch: usize,
) -> Result<BatchRequest, RequestProblem> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        return Err(RequestProblem::BodyNotJson);
    }
    let batch: BatchRequest =
        serde_json::from_slice(body).map_err(|_| RequestProblem::NotGraphqlJson)?;
    let requests: Vec<&Request> = match &batch {
        BatchRequest::Single(request) => vec![request],
        BatchRequest::Batch(requests) => requests.iter().collect(),
    };
    if requests.is_empty() {
        return Err(RequestProblem::EmptyBatch);
    }
    if requests.len() > max_batch {
        return Err(RequestProblem::BatchTooLarge);
    }
    if requests
        .iter()
        .any(|r| r.query.trim().is_empty() && !r.extensions.contains_key("persistedQuery"))
    {
        return Err(RequestProblem::NoQuery);
    }
    Ok(batch)
}

/// Adds who is asking: client IP, user agent, bearer token, a fresh loader.
fn with_request_data(
    state: &HttpState,
    peer: SocketAddr,
    headers: &HeaderMap,
    request: Request,
) -> Request {
    let client = client_ip::client(peer, headers, &state.app.config.http);
    let meta = RequestMeta {
        client_ip: client.ip,
        client_network: client.network,
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    request
        .data(meta)
        .data(bearer_token(headers))
        .data(new_user_loader(state.app.db.clone()))
}

/// The token of `Authorization: Bearer <token>`, if the header is one.
fn bearer_token(headers: &HeaderMap) -> BearerToken {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    BearerToken(token)
}

/// Every error leaves with a code: request-level ones without one get
/// `BAD_REQUEST`, field errors without one `INTERNAL_SERVER_ERROR`.
fn ensure_codes(response: &mut Response) {
    let request_level = response.data == async_graphql::Value::Null;
    for error in &mut response.errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|e| e.get("code").is_some());
        if has_code {
            continue;
        }
        if request_level {
            *error =
                RequestError::BadRequest.tag(std::mem::replace(error, ServerError::new("", None)));
        } else {
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", INTERNAL_SERVER_ERROR);
        }
    }
}

fn is_request_error(response: &Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response
            .errors
            .iter()
            .all(|e| RequestError::of(e).is_some())
}

/// The language of the client's messages (`Accept-Language`, contract §3.9).
fn language(headers: &HeaderMap) -> Language {
    Language::from_accept_language(
        headers
            .get_all(header::ACCEPT_LANGUAGE)
            .iter()
            .filter_map(|value| value.to_str().ok()),
    )
}

fn wants_graphql_response_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains(GRAPHQL_RESPONSE_JSON))
}

/// Field errors always come with 200. A request that could not run at all
/// gets 400 only for clients that accept `application/graphql-response+json`
/// (GraphQL over HTTP), and no `data` key; `application/json` clients get
/// 200 and `"data": null`, as they expect.
fn respond(headers: &HeaderMap, mut batch: BatchResponse) -> axum::response::Response {
    let modern = wants_graphql_response_json(headers);
    let language = language(headers);
    let finish = |response: &mut Response| {
        ensure_codes(response);
        localize(response, language);
    };
    match &mut batch {
        BatchResponse::Single(response) => finish(response),
        BatchResponse::Batch(responses) => responses.iter_mut().for_each(finish),
    }
    let status = match &batch {
        BatchResponse::Single(response) if modern && is_request_error(response) => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::OK,
    };
    json_response(modern, status, &batch)
}

/// A request-level `BAD_REQUEST` error, as JSON in the format the client accepts.
pub(super) fn bad_request(
    headers: &HeaderMap,
    status: StatusCode,
    problem: RequestProblem,
) -> axum::response::Response {
    error_answer(headers, status, RequestError::BadRequest.error(problem))
}

/// The answer to a request that ran out of `HTTP_REQUEST_TIMEOUT_SECS`.
pub(super) fn timed_out(headers: &HeaderMap, timeout: Duration) -> axum::response::Response {
    let error = async_graphql::Error::from(AppError::unavailable(
        "request time",
        anyhow::anyhow!("still running after HTTP_REQUEST_TIMEOUT_SECS ({timeout:?})"),
    ));
    error_answer(
        headers,
        StatusCode::SERVICE_UNAVAILABLE,
        error.into_server_error(Pos::default()),
    )
}

/// One error answered without running anything, in the client's language
/// and the JSON format it accepts.
fn error_answer(
    headers: &HeaderMap,
    status: StatusCode,
    error: ServerError,
) -> axum::response::Response {
    let mut response = Response::from_errors(vec![error]);
    localize(&mut response, language(headers));
    json_response(
        wants_graphql_response_json(headers),
        status,
        &BatchResponse::Single(response),
    )
}

/// One response as JSON; without `data` for a request error to a modern client.
fn response_json(modern: bool, response: &Response) -> serde_json::Result<serde_json::Value> {
    let mut json = serde_json::to_value(response)?;
    if modern
        && is_request_error(response)
        && let Some(object) = json.as_object_mut()
    {
        object.remove("data");
    }
    Ok(json)
}

fn json_response(
    modern: bool,
    status: StatusCode,
    body: &BatchResponse,
) -> axum::response::Response {
    let content_type = if modern {
        GRAPHQL_RESPONSE_JSON
    } else {
        "application/json"
    };
    let reshape = modern
        && match body {
            BatchResponse::Single(response) => is_request_error(response),
            BatchResponse::Batch(responses) => responses.iter().any(is_request_error),
        };
    let bytes = if reshape {
        let json = match body {
            BatchResponse::Single(response) => response_json(modern, response),
            BatchResponse::Batch(responses) => responses
                .iter()
                .map(|response| response_json(modern, response))
                .collect::<serde_json::Result<Vec<_>>>()
                .map(serde_json::Value::Array),
        };
        json.and_then(|json| serde_json::to_vec(&json))
    } else {
        // The common case, straight to bytes.
        serde_json::to_vec(body)
    };
    match bytes {
        // Messages follow `Accept-Language`: caches must keep one answer per language.
        Ok(bytes) => (
            status,
            [
                (header::CONTENT_TYPE, content_type),
                (header::VARY, "accept-language"),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "could not serialize a GraphQL response");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
