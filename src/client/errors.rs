//! What a v2 client call can fail with, and etcdctl's text for each failure: the cluster
//! error with its `error #N:` detail lines, the v2 error JSON (`100: Key not found (/a) [7]`),
//! and the members/auth API errors.

use std::fmt;

use serde::Deserialize;

use super::http::HttpError;

/// One failed attempt on one endpoint, inside a [`ClientError::Cluster`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptError {
    /// The transport failed (connect, read, framing).
    Http(HttpError),
    /// HTTP 500 or 503 from the endpoint.
    NoLeader { endpoint: String },
    /// Another 5xx; `status_text` is the standard reason phrase.
    ServerError {
        endpoint: String,
        status_text: String,
    },
    /// No response headers within `--timeout`.
    HeaderTimeout { endpoint: String },
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptError::Http(error) => write!(f, "{}", error),
            AttemptError::NoLeader { endpoint } => {
                write!(f, "client: etcd member {} has no leader", endpoint)
            }
            AttemptError::ServerError {
                endpoint,
                status_text,
            } => write!(
                f,
                "client: etcd member {} returns server error [{}]",
                endpoint, status_text
            ),
            AttemptError::HeaderTimeout { endpoint } => {
                write!(f, "client: endpoint {} exceeded header timeout", endpoint)
            }
        }
    }
}

impl AttemptError {
    fn is_connection_error(&self) -> bool {
        match self {
            AttemptError::Http(error) => error.is_connection_error(),
            _ => false,
        }
    }
}

/// The v2 error JSON: `{"errorCode":N,"message":"…","cause":"…","index":N}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct V2Error {
    #[serde(rename = "errorCode", default)]
    pub code: i64,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub cause: String,
    #[serde(default)]
    pub index: u64,
}

/// Everything a client call can fail with; `Display` is etcdctl's text for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// Every endpoint failed; one entry per attempt.
    Cluster { errors: Vec<AttemptError> },
    /// A one-shot request failed on its only attempt.
    Attempt(AttemptError),
    /// The `--total-timeout` deadline passed.
    DeadlineExceeded,
    /// The endpoint list is empty.
    NoEndpoints,
    /// The server answered with the v2 error JSON.
    V2(V2Error),
    /// A 200/201 with an empty body.
    EmptyBody,
    /// A body that is not the JSON expected.
    InvalidJson,
    /// `X-Etcd-Index` is not a number.
    BadIndexHeader { found: String },
    /// Members API: a status outside the accepted set.
    UnexpectedStatus { found: u16 },
    /// Members API: the server's `{"message":…}`.
    Message { message: String },
    /// Members API: a response that is not the JSON expected (Go's decoder text).
    Decode { reason: String },
    /// Bad arguments detected client-side (peer URLs).
    Invalid { reason: String },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Cluster { errors } => {
                write!(f, "client: etcd cluster is unavailable or misconfigured")?;
                for (i, error) in errors.iter().enumerate() {
                    writeln!(f, "; error #{}: {}", i, error)?;
                }
                Ok(())
            }
            ClientError::Attempt(error) => write!(f, "{}", error),
            ClientError::DeadlineExceeded => write!(f, "context deadline exceeded"),
            ClientError::NoEndpoints => write!(f, "client: no endpoints available"),
            ClientError::V2(error) => write!(
                f,
                "{}: {} ({}) [{}]",
                error.code, error.message, error.cause, error.index
            ),
            ClientError::EmptyBody => write!(f, "client: response body is empty"),
            ClientError::InvalidJson => write!(
                f,
                "client: response is invalid json. The endpoint is probably not valid etcd \
                 cluster endpoint"
            ),
            ClientError::BadIndexHeader { found } => {
                write!(f, "strconv.ParseUint: parsing {:?}: invalid syntax", found)
            }
            ClientError::UnexpectedStatus { found } => {
                write!(f, "unexpected status code {}", found)
            }
            ClientError::Message { message } => write!(f, "{}", message),
            ClientError::Decode { reason } => write!(f, "{}", reason),
            ClientError::Invalid { reason } => write!(f, "{}", reason),
        }
    }
}

impl std::error::Error for ClientError {}

impl ClientError {
    /// The extra lines etcdctl prints after a cluster error (`error #0: …`).
    pub fn detail(&self) -> Option<String> {
        match self {
            ClientError::Cluster { errors } => Some(
                errors
                    .iter()
                    .enumerate()
                    .map(|(i, e)| format!("error #{}: {}\n", i, e))
                    .collect(),
            ),
            _ => None,
        }
    }

    /// etcdctl's `isConnectionError`: every attempt failed to reach its endpoint, or the
    /// deadline passed.
    pub fn is_connection_error(&self) -> bool {
        match self {
            ClientError::Cluster { errors } => errors.iter().all(AttemptError::is_connection_error),
            ClientError::Attempt(error) => error.is_connection_error(),
            ClientError::DeadlineExceeded => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_error_text_matches_etcdctl() {
        let error = ClientError::Cluster {
            errors: vec![
                AttemptError::NoLeader {
                    endpoint: "http://a:1".into(),
                },
                AttemptError::HeaderTimeout {
                    endpoint: "http://b:2".into(),
                },
            ],
        };
        assert_eq!(
            error.to_string(),
            "client: etcd cluster is unavailable or misconfigured; error #0: client: etcd member \
             http://a:1 has no leader\n; error #1: client: endpoint http://b:2 exceeded header \
             timeout\n"
        );
        assert_eq!(
            error.detail().unwrap(),
            "error #0: client: etcd member http://a:1 has no leader\nerror #1: client: endpoint \
             http://b:2 exceeded header timeout\n"
        );
        assert!(!error.is_connection_error());
    }
}
