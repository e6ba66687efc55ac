//! Reading a token endpoint's answer (code exchange, refresh, client credentials, OAuth 1
//! request and access tokens) with a size cap: the answer comes from a host the template (or an
//! operator) names, and one that streams gigabytes must not take the server's memory with it.
//! The body is read chunk by chunk and the read stops as soon as the cap is passed; it is never
//! buffered whole first.

use axum::body::Bytes;

/// Largest token answer read: real ones are a few kilobytes (an id_token with many claims
/// stays far below this).
pub const MAX_TOKEN_ANSWER_BYTES: usize = 1024 * 1024;

/// Why an answer could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum AnswerError {
    /// Longer than the cap (announced by `Content-Length`, or found while reading).
    TooLarge,
    /// The connection failed or timed out while reading.
    CutShort,
}

/// The body of `response`, if it is at most `limit` bytes.
pub async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Bytes, AnswerError> {
    let announced = response.content_length().unwrap_or(0);
    if announced > limit as u64 {
        return Err(AnswerError::TooLarge);
    }
    let mut body = Vec::with_capacity(usize::try_from(announced).unwrap_or(0).min(limit));
    while let Some(chunk) = response.chunk().await.map_err(|_| AnswerError::CutShort)? {
        if body.len() + chunk.len() > limit {
            return Err(AnswerError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// `read_limited` with the token answer cap.
pub async fn read_token_answer(response: reqwest::Response) -> Result<Bytes, AnswerError> {
    read_limited(response, MAX_TOKEN_ANSWER_BYTES).await
}

/// The reason given when an answer is too large.
pub const TOO_LARGE: &str = "the token endpoint answered with more than 1 MiB";
