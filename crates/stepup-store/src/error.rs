//! The one error every store returns.

/// A store (the application's factor store, or the state store) failed.
/// Step-ups fail closed: no proof is recorded when a store cannot answer.
///
/// ```
/// use stepup_store::StoreError;
///
/// let e = StoreError::new("redis", "get: timed out");
/// assert_eq!(e.to_string(), "the redis store failed: get: timed out");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {store} store failed: {message}")]
pub struct StoreError {
    store: &'static str,
    message: String,
}

impl StoreError {
    /// A failure of the store named `store` ("state", "factor", "password").
    pub fn new(store: &'static str, message: impl Into<String>) -> StoreError {
        StoreError {
            store,
            message: message.into(),
        }
    }

    /// Which store failed (`state`, `factor`, `password`, `send`, …): what
    /// the routes log, since the message may carry what an application put
    /// in its error (an address, a host name).
    ///
    /// ```
    /// use stepup_store::StoreError;
    /// assert_eq!(StoreError::new("send", "mailbox bob@example.com full").store(), "send");
    /// ```
    pub fn store(&self) -> &'static str {
        self.store
    }
}
