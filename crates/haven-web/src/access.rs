//! What each route needs: one table, checked after routing and before a
//! route's extractors run. A user's or automation's token acts with its
//! roles; the instance's own token (the data dir's `api-token`) acts as
//! an admin. A route missing from the table is refused (fail closed).

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use haven_model::access::{Permission, allowed};
use haven_model::errors::ErrorCode;
use haven_ops::api::Identity;

use crate::error::error;

/// Every route under `/api/v1` with what it needs.
pub const ROUTES: &[(&str, &str, Permission)] = &[
    ("GET", "/status", Permission::Read),
    ("GET", "/jobs", Permission::Read),
    ("GET", "/jobs/{id}", Permission::Read),
    ("POST", "/systems/{system}/run", Permission::Operate),
    ("GET", "/alerts", Permission::Read),
    ("GET", "/alerts/{id}", Permission::Read),
    ("POST", "/alerts/{id}/ack", Permission::Operate),
    ("POST", "/alerts/{id}/resolve", Permission::Operate),
    ("GET", "/maintenance", Permission::Read),
    ("POST", "/maintenance", Permission::Operate),
    ("POST", "/maintenance/{id}/end", Permission::Operate),
    ("POST", "/channels/{id}/test", Permission::Operate),
    ("GET", "/preflight", Permission::Read),
    ("POST", "/drills", Permission::Operate),
    ("GET", "/drills", Permission::Read),
    ("POST", "/service-drills", Permission::Operate),
    ("GET", "/service-drills", Permission::Read),
    ("POST", "/recovery/forecast", Permission::Read),
    ("POST", "/recoveries", Permission::Restore),
    ("GET", "/recoveries", Permission::Read),
    ("GET", "/recoveries/{id}", Permission::Read),
    ("POST", "/recoveries/{id}/resume", Permission::Restore),
    ("POST", "/recoveries/{id}/abandon", Permission::Restore),
    (
        "POST",
        "/recoveries/{id}/steps/{step}/decide",
        Permission::Restore,
    ),
    ("POST", "/audit/verify", Permission::Audit),
    ("POST", "/audit/anchor", Permission::Audit),
    ("GET", "/audit/entries", Permission::Audit),
    ("GET", "/audit/export", Permission::Audit),
    ("POST", "/users", Permission::Admin),
    ("GET", "/users", Permission::Admin),
    ("POST", "/users/{name}/change", Permission::Admin),
    ("POST", "/tokens", Permission::Admin),
    ("GET", "/tokens", Permission::Admin),
    ("POST", "/tokens/{id}/revoke", Permission::Admin),
];

/// What `method` on the route `pattern` needs (none: not in the table).
pub fn needed(method: &Method, pattern: &str) -> Option<Permission> {
    let pattern = pattern.strip_prefix("/api/v1").unwrap_or(pattern);
    ROUTES
        .iter()
        .find(|(m, p, _)| *m == method.as_str() && *p == pattern)
        .map(|(_, _, needs)| *needs)
}

/// Refuse a request whose identity's roles do not grant what its route
/// needs (403), or whose route the table does not know.
pub(crate) async fn authorize(request: Request, next: Next) -> Response {
    let pattern = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let Some(needs) = needed(request.method(), &pattern) else {
        // A known route asked with another method: the router answers 405.
        let route = pattern.strip_prefix("/api/v1").unwrap_or(&pattern);
        if ROUTES.iter().any(|(_, p, _)| *p == route) {
            return next.run(request).await;
        }
        return error(
            ErrorCode::Forbidden,
            format!(
                "{} {pattern} has no entry in the access table: refused",
                request.method()
            ),
        );
    };
    // No identity: the instance's own token, which acts as an admin.
    if let Some(identity) = request.extensions().get::<Identity>()
        && !allowed(&identity.roles, needs)
    {
        let roles: Vec<&str> = identity.roles.iter().map(|r| r.as_str()).collect();
        return error(
            ErrorCode::Forbidden,
            format!(
                "{} may not do this: it needs {needs:?} permission, which none of its roles ({}) grants",
                identity.actor,
                roles.join(", ")
            ),
        );
    }
    next.run(request).await
}
