//! The console's users and tokens (admins): who may act, adding a user,
//! disabling one (a four-eyes change when that is on), enrolling a second
//! factor, making and revoking tokens. A secret (a token's, a TOTP seed)
//! is shown once, in the answer to the form that made it — never in a
//! link, never again.

use axum::Extension;
use axum::extract::Path;
use axum::response::{IntoResponse, Redirect, Response};
use haven_model::access::{Owner, Role};
use haven_model::errors::ErrorCode;
use haven_ops::api::{Instance, InstanceError, NewToken, NewUser, TokenRevocation, UserChange};
use serde::Deserialize;
use serde_json::{Value, json};

use super::lists::{List, show};
use super::{Checked, NoFields, Viewer, failed, time};
use crate::access::Acting;

fn role_names(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `GET /users`: users and tokens, with their forms.
pub(super) async fn users(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    page(&instance, &viewer, None).await
}

/// The users page, with `notice` (what a form did) above it.
async fn page(instance: &dyn Instance, viewer: &Viewer, notice: Option<String>) -> Response {
    let (users, tokens) = match (instance.users().await, instance.tokens().await) {
        (Ok(users), Ok(tokens)) => (users, tokens),
        (Err(e), _) | (_, Err(e)) => return failed(viewer, "users", &e),
    };
    let action = |path: String, label: &str, id: String| json!({"action": path, "label": label, "reason": false, "id": id, "hidden": []});
    let mut rows: Vec<Value> = users
        .iter()
        .map(|u| {
            let state = if u.disabled { "disabled" } else if u.sso { "single sign-on" } else { "local" };
            let actions: Vec<Value> = if u.disabled {
                Vec::new()
            } else {
                let mut a = vec![action(format!("/users/{}/disable", u.name), "Disable", format!("disable-{}", u.name))];
                if !u.sso {
                    a.push(action(format!("/users/{}/totp", u.name), if u.totp { "New TOTP seed" } else { "Enrol TOTP" }, format!("totp-{}", u.name)));
                }
                a
            };
            json!({"cells": [format!("user {}", u.name), role_names(&u.roles), u.teams.join(", "), state.to_string(),
                             if u.totp { "TOTP" } else { "" }.to_string()],
                   "actions": actions})
        })
        .collect();
    rows.extend(tokens.iter().map(|t| {
        let state = match t.revoked_at {
            Some(at) => format!("revoked {}", time(Some(at))),
            None => format!("expires {}", time(Some(t.expires_at))),
        };
        let owner = match &t.owner {
            Owner::User(name) => format!("user {name}"),
            Owner::Automation(name) => format!("automation {name}"),
        };
        let actions: Vec<Value> = if t.revoked_at.is_none() {
            vec![action(format!("/tokens/{}/revoke", t.id), "Revoke", format!("revoke-{}", t.id))]
        } else {
            Vec::new()
        };
        json!({"cells": [format!("token {} ({})", t.id, t.name), role_names(&t.roles), owner, state, String::new()],
               "actions": actions})
    }));
    let list = List {
        title: "Users and tokens".into(),
        caption: "Who may act (no password, hash or secret is ever shown)".into(),
        columns: vec!["Who", "Roles", "Teams / owner", "State", "Second factor"],
        rows,
        empty: "No users or tokens.",
        notice,
        adds: forms(&users),
        ..List::default()
    };
    show(viewer, "users", list)
}

/// The add-a-user and make-a-token forms.
fn forms(users: &[haven_model::access::User]) -> Vec<Value> {
    let roles = Role::ALL
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let active: Vec<String> = users
        .iter()
        .filter(|u| !u.disabled)
        .map(|u| u.name.clone())
        .collect();
    vec![
        json!({
            "id": "user", "title": "Add a user", "action": "/users", "button": "Add the user",
            "intro": "At least 12 characters, not the name, not a well-known password (docs/access.md).",
            "fields": [
                {"name": "name", "label": "Name", "required": true},
                {"name": "password", "label": "Password", "type": "password", "required": true, "autocomplete": "new-password"},
                {"name": "roles", "label": format!("Roles, comma-separated ({roles})"), "required": true},
                {"name": "teams", "label": "Teams, comma-separated (a service owner's)"},
            ],
        }),
        json!({
            "id": "token", "title": "Make a token", "action": "/tokens", "button": "Make the token",
            "intro": "Its roles are at most its user's; its secret is shown once.",
            "fields": [
                {"name": "user", "label": "For user", "options": active, "required": true},
                {"name": "name", "label": "Token name (what uses it)", "required": true},
                {"name": "roles", "label": "Roles, comma-separated", "required": true},
                {"name": "expires", "label": "Expires after (90d, 12h)", "value": "90d", "required": true},
            ],
        }),
    ]
}

fn words(text: &str) -> Vec<String> {
    text.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn roles(text: &str) -> Result<Vec<Role>, InstanceError> {
    words(text)
        .iter()
        .map(|r| Role::parse(r))
        .collect::<Result<_, _>>()
        .map_err(|e| InstanceError::new(ErrorCode::InvalidArgument, e))
}

/// What a form did: the page again with it said, or (a four-eyes change)
/// with the request it became.
async fn answered<T>(
    instance: &dyn Instance,
    viewer: &Viewer,
    done: Result<T, InstanceError>,
    said: impl FnOnce(T) -> String,
) -> Response {
    match done {
        Ok(value) => page(instance, viewer, Some(said(value))).await,
        Err(e) if e.code == ErrorCode::ApprovalRequired => {
            page(instance, viewer, Some(e.message)).await
        }
        Err(e) => failed(viewer, "users", &e),
    }
}

/// The add-a-user form.
#[derive(Deserialize)]
pub(super) struct UserForm {
    name: String,
    password: String,
    roles: String,
    #[serde(default)]
    teams: String,
}

/// `POST /users`.
pub(super) async fn add_user(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
    Checked(form): Checked<UserForm>,
) -> Response {
    let roles = match roles(&form.roles) {
        Ok(roles) => roles,
        Err(e) => return failed(&viewer, "users", &e),
    };
    let request = NewUser {
        name: form.name.trim().to_string(),
        roles,
        teams: words(&form.teams),
        password: form.password,
        by: viewer.actor.clone(),
    };
    let done = instance.user_add(&request).await;
    answered(&instance, &viewer, done, |u| {
        format!("User {} added.", u.name)
    })
    .await
}

/// `POST /users/{name}/disable|totp`.
pub(super) async fn user_action(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
    Path((name, what)): Path<(String, String)>,
    Checked(_): Checked<NoFields>,
) -> Response {
    match what.as_str() {
        "disable" => {
            let change = UserChange {
                name: name.clone(),
                password: None,
                roles: None,
                teams: None,
                by: viewer.actor.clone(),
            };
            let done = instance.user_change(&change).await;
            answered(&instance, &viewer, done, |u| {
                format!(
                    "User {} disabled; their sessions and tokens no longer work.",
                    u.name
                )
            })
            .await
        }
        "totp" => {
            let done = instance.user_totp(&name).await;
            answered(&instance, &viewer, done, |t| {
                format!(
                    "TOTP for {}: enter this seed in their authenticator now (shown only this once): {} — or open {}",
                    t.user, t.secret, t.uri
                )
            })
            .await
        }
        _ => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

/// The make-a-token form.
#[derive(Deserialize)]
pub(super) struct TokenForm {
    user: String,
    name: String,
    roles: String,
    expires: String,
}

/// `POST /tokens`: the secret is in this answer only.
pub(super) async fn add_token(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
    Checked(form): Checked<TokenForm>,
) -> Response {
    let parsed = roles(&form.roles).and_then(|roles| {
        let lifetime = haven_model::catalog::duration::parse_duration(form.expires.trim())
            .map_err(|e| {
                InstanceError::new(ErrorCode::InvalidArgument, format!("expires after: {e}"))
            })?;
        Ok((roles, lifetime))
    });
    let (roles, lifetime) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => return failed(&viewer, "users", &e),
    };
    let request = NewToken {
        name: form.name.trim().to_string(),
        owner: Owner::User(form.user),
        roles,
        lifetime,
        by: viewer.actor.clone(),
    };
    let done = instance.token_create(&request).await;
    answered(&instance, &viewer, done, |t| {
        format!(
            "Token {} made, expires {}; its secret, shown only this once (keep it safe): {}",
            t.token.id,
            time(Some(t.token.expires_at)),
            t.secret
        )
    })
    .await
}

/// `POST /tokens/{id}/revoke`.
pub(super) async fn revoke_token(
    Acting(instance): Acting,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Checked(_): Checked<NoFields>,
) -> Response {
    let request = TokenRevocation {
        id,
        by: viewer.actor.clone(),
    };
    let done = instance.token_revoke(&request).await;
    match done {
        Ok(_) => Redirect::to("/users").into_response(),
        Err(e) => answered(&instance, &viewer, Err::<(), _>(e), |()| String::new()).await,
    }
}
