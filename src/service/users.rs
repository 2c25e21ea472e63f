//! The user service (upstream's `USER_SERVICE_URL`): names and emails of learners, for
//! reports. Optional: without it, or when it fails, names are empty and the report still
//! answers.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::ids::Scope;

/// A learner's display details.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserDetails {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
}

/// Looks users up in the user service.
#[derive(Debug, Clone)]
pub struct UserDirectory {
    base: Option<url::Url>,
    client: reqwest::Client,
}

impl UserDirectory {
    pub fn new(base: Option<url::Url>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(crate::events::safety::IDLE_CONNECTIONS_KEPT)
            .build()
            .unwrap_or_default();
        UserDirectory { base, client }
    }

    /// Details of `ids` (missing users are absent from the map). Never fails: a missing or
    /// failing service gives an empty map, logged.
    pub async fn details(
        &self,
        scope: &Scope,
        authorization: Option<&str>,
        ids: &[Uuid],
    ) -> HashMap<Uuid, UserDetails> {
        let Some(base) = &self.base else {
            return HashMap::new();
        };
        if ids.is_empty() {
            return HashMap::new();
        }
        let url = format!("{}/list", base.as_str().trim_end_matches('/'));
        let req = self
            .client
            .post(&url)
            .header("tenantid", scope.tenant.to_string())
            .header("organisationId", scope.organisation.to_string())
            .json(&json!({"filters": {"userId": ids}, "limit": ids.len(), "includeCustomFields": false}));
        let Some(body) = answer(req, authorization, "the lookup").await else {
            return HashMap::new();
        };
        let text = |u: &Value, k: &str| {
            u.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        body.pointer("/result/getUserDetails")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|u| {
                let id = u
                    .get("userId")
                    .and_then(Value::as_str)
                    .and_then(|s| Uuid::parse_str(s).ok())?;
                Some((
                    id,
                    UserDetails {
                        first_name: text(u, "firstName"),
                        last_name: text(u, "lastName"),
                        email: text(u, "email"),
                    },
                ))
            })
            .collect()
    }

    /// The tenant's configuration for this service, as upstream asks for it:
    /// `GET {USER_SERVICE_URL}/tenant/{tenantId}?context=assessment`, its `result` when that is
    /// a non-empty object. Never fails: a missing or failing service gives `None`, logged.
    pub async fn tenant_config(
        &self,
        tenant: Uuid,
        authorization: Option<&str>,
    ) -> Option<serde_json::Map<String, Value>> {
        let base = self.base.as_ref()?;
        let url = format!("{}/tenant/{tenant}", base.as_str().trim_end_matches('/'));
        let req = self
            .client
            .get(&url)
            .query(&[("context", "assessment")])
            .header("tenantid", tenant.to_string());
        let body = answer(req, authorization, "the tenant's configuration").await?;
        match body.get("result") {
            Some(Value::Object(m)) if !m.is_empty() => Some(m.clone()),
            _ => None,
        }
    }
}

/// The JSON answer to `req` (sent with the caller's `authorization`), or `None` when the user
/// service fails, refuses or answers something unreadable, logged with `what` was asked.
async fn answer(
    mut req: reqwest::RequestBuilder,
    authorization: Option<&str>,
    what: &str,
) -> Option<Value> {
    if let Some(a) = authorization {
        req = req.header("Authorization", a);
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => match r.json().await {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(error = %e, what, "user service answered with unreadable JSON");
                None
            }
        },
        Ok(r) => {
            tracing::warn!(status = r.status().as_u16(), what, "user service refused");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, what, "user service unreachable");
            None
        }
    }
}
