//! Connection operations every front door shares (REST, dashboard).

use crate::error::ApiError;
use crate::webhooks::{self, EventKind};
use crate::AppState;

/// Deletes a connection and emits the `connection.deleted` webhook (also the dashboard's delete);
/// `UnknownConnection` when there was none.
pub async fn delete_connection_and_notify(
    state: &AppState,
    key: &str,
    connection_id: &str,
) -> Result<(), ApiError> {
    if state.store.delete_connection(key, connection_id).await? {
        webhooks::emit(
            state,
            EventKind::ConnectionDeleted,
            key,
            connection_id,
            serde_json::json!({}),
        )
        .await;
        Ok(())
    } else {
        Err(ApiError::UnknownConnection)
    }
}
