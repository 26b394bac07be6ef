//! What each route needs: one table, checked after routing and before a
//! route's extractors run. A user's or automation's token acts with its
//! roles; the instance's own token (the data dir's `api-token`) acts as
//! an admin. A route missing from the table is refused (fail closed).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request};
use axum::http::Method;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use haven_model::access::{Permission, Role, allowed, owner_may};
use haven_model::errors::ErrorCode;
use haven_ops::api::{Audited, Caller, Identity};

use crate::AppState;
use crate::error::error;

/// Where a route acts: on the instance as a whole, or on services and
/// systems a service owner may own (then the instance interface checks
/// the owner's scope: [`haven_ops::api::Caller::may`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// The whole instance.
    Instance,
    /// A service or system (a service owner's own are allowed).
    Owned,
}

/// Every route under `/api/v1`: what it needs, and where it acts.
pub const ROUTES: &[(&str, &str, Permission, Reach)] = &[
    ("GET", "/status", Permission::Read, Reach::Instance),
    ("GET", "/services/{id}", Permission::Read, Reach::Instance),
    (
        "GET",
        "/catalog/findings",
        Permission::Read,
        Reach::Instance,
    ),
    ("GET", "/catalog/graph", Permission::Read, Reach::Instance),
    ("GET", "/bia", Permission::Read, Reach::Instance),
    ("GET", "/plan/order", Permission::Read, Reach::Instance),
    ("GET", "/jobs", Permission::Read, Reach::Instance),
    ("GET", "/jobs/{id}", Permission::Read, Reach::Instance),
    (
        "POST",
        "/systems/{system}/run",
        Permission::Operate,
        Reach::Owned,
    ),
    ("GET", "/alerts", Permission::Read, Reach::Instance),
    ("GET", "/alerts/{id}", Permission::Read, Reach::Instance),
    (
        "POST",
        "/alerts/{id}/ack",
        Permission::Operate,
        Reach::Owned,
    ),
    (
        "POST",
        "/alerts/{id}/resolve",
        Permission::Operate,
        Reach::Owned,
    ),
    ("GET", "/maintenance", Permission::Read, Reach::Instance),
    ("POST", "/maintenance", Permission::Operate, Reach::Instance),
    (
        "POST",
        "/maintenance/{id}/end",
        Permission::Operate,
        Reach::Instance,
    ),
    (
        "POST",
        "/channels/{id}/test",
        Permission::Operate,
        Reach::Instance,
    ),
    ("GET", "/preflight", Permission::Read, Reach::Instance),
    ("POST", "/drills", Permission::Operate, Reach::Owned),
    ("GET", "/drills", Permission::Read, Reach::Instance),
    ("POST", "/service-drills", Permission::Operate, Reach::Owned),
    ("GET", "/service-drills", Permission::Read, Reach::Instance),
    (
        "POST",
        "/recovery/forecast",
        Permission::Read,
        Reach::Instance,
    ),
    ("POST", "/recoveries", Permission::Restore, Reach::Owned),
    ("GET", "/recoveries", Permission::Read, Reach::Instance),
    ("GET", "/recoveries/{id}", Permission::Read, Reach::Instance),
    (
        "POST",
        "/recoveries/{id}/resume",
        Permission::Restore,
        Reach::Owned,
    ),
    (
        "POST",
        "/recoveries/{id}/abandon",
        Permission::Restore,
        Reach::Owned,
    ),
    (
        "POST",
        "/recoveries/{id}/steps/{step}/decide",
        Permission::Restore,
        Reach::Owned,
    ),
    ("POST", "/audit/verify", Permission::Audit, Reach::Instance),
    ("POST", "/audit/anchor", Permission::Audit, Reach::Instance),
    ("GET", "/audit/entries", Permission::Audit, Reach::Instance),
    ("GET", "/audit/export", Permission::Audit, Reach::Instance),
    ("POST", "/users", Permission::Admin, Reach::Instance),
    ("GET", "/users", Permission::Admin, Reach::Instance),
    (
        "POST",
        "/users/{name}/totp",
        Permission::Admin,
        Reach::Instance,
    ),
    (
        "POST",
        "/users/{name}/change",
        Permission::Admin,
        Reach::Instance,
    ),
    ("POST", "/tokens", Permission::Admin, Reach::Instance),
    ("GET", "/tokens", Permission::Admin, Reach::Instance),
    (
        "POST",
        "/tokens/{id}/revoke",
        Permission::Admin,
        Reach::Instance,
    ),
    ("GET", "/holds", Permission::Read, Reach::Instance),
    ("POST", "/holds", Permission::Operate, Reach::Instance),
    ("POST", "/holds/lift", Permission::Operate, Reach::Instance),
    ("GET", "/requests", Permission::Read, Reach::Instance),
    ("GET", "/requests/{id}", Permission::Read, Reach::Instance),
    (
        "POST",
        "/requests/{id}/decide",
        Permission::Approve,
        Reach::Instance,
    ),
];

/// What `method` on the route `pattern` needs, and where it acts (none:
/// not in the table).
pub fn needed(method: &Method, pattern: &str) -> Option<(Permission, Reach)> {
    let pattern = pattern.strip_prefix("/api/v1").unwrap_or(pattern);
    ROUTES
        .iter()
        .find(|(m, p, _, _)| *m == method.as_str() && *p == pattern)
        .map(|(_, _, needs, reach)| (*needs, *reach))
}

/// May `roles` ask for the route at all? A service owner passes on to
/// the routes that act on what it may own; its scope is checked there.
pub fn admitted(roles: &[Role], needs: Permission, reach: Reach) -> bool {
    allowed(roles, needs)
        || (reach == Reach::Owned && roles.contains(&Role::ServiceOwner) && owner_may(needs))
}

/// Refuse a request whose identity's roles do not grant what its route
/// needs (403), or whose route the table does not know.
pub(crate) async fn authorize(request: Request, next: Next) -> Response {
    let pattern = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let Some((needs, reach)) = needed(request.method(), &pattern) else {
        // A known route asked with another method: the router answers 405.
        let route = pattern.strip_prefix("/api/v1").unwrap_or(&pattern);
        if ROUTES.iter().any(|(_, p, _, _)| *p == route) {
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
        && !admitted(&identity.roles, needs, reach)
    {
        let roles: Vec<&str> = identity.roles.iter().map(|r| r.as_str()).collect();
        return error(
            ErrorCode::Forbidden,
            format!(
                "{} may not do this: it needs {} permission, which none of its roles ({}) grants",
                identity.actor,
                haven_ops::access::permission_name(needs),
                roles.join(", ")
            ),
        );
    }
    next.run(request).await
}

/// The header an admin gives a break-glass reason in (four eyes
/// bypassed, kept for review: docs/access.md).
pub const BREAK_GLASS_HEADER: &str = "x-haven-break-glass";

/// The instance as the request's caller acts on it: whoever its token
/// proved (the instance's own token: the owner, an admin), from the
/// client's address, with a break-glass reason when one was given.
pub(crate) struct Acting(pub Audited);

impl FromRequestParts<AppState> for Acting {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let origin = origin_of(&parts.extensions);
        let mut caller = match parts.extensions.get::<Identity>() {
            Some(identity) => Caller::identified(identity, origin),
            None => Caller::owner(crate::TOKEN_IDENTITY, origin),
        };
        caller.break_glass = parts
            .headers
            .get(BREAK_GLASS_HEADER)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string());
        Ok(Acting(state.instance.acting(caller)))
    }
}

/// Where a request came from, as the audit log records it.
pub(crate) fn origin_of(extensions: &axum::http::Extensions) -> String {
    match extensions.get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(peer)) => format!("api {peer}"),
        None => "api".into(),
    }
}

/// Where the request came from (`api 127.0.0.1:51234`).
pub(crate) struct Origin(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Origin(origin_of(&parts.extensions)))
    }
}
