//! OIDC discovery for the `idtoken` var source: the ATC is the issuer of the tokens it
//! hands to builds, and publishes the keys that verify them. Both are public.

use super::error::ApiError;
use super::{json, AppState};
use axum::extract::State;
use axum::response::Response;

/// `GET /.well-known/openid-configuration`
pub async fn openid_configuration(State(state): State<AppState>) -> Response {
    json(&crate::atc::idtoken::discovery(&state.external_url))
}

/// `GET /.well-known/jwks.json`: read from the database on every request, so keys made or
/// rotated by any web node show at once.
pub async fn jwks(State(state): State<AppState>) -> Result<Response, ApiError> {
    let rows = state
        .store
        .signing_keys()
        .await
        .map_err(|e| ApiError::Internal(format!("loading signing keys: {e}")))?;
    Ok(json(&crate::atc::idtoken::jwks(&rows)))
}
