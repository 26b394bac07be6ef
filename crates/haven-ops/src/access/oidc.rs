//! Single sign-on with an OpenID Connect provider: the authorization
//! code flow with PKCE. [`begin`] gives the provider's URL to send the
//! browser to, and what the browser keeps meanwhile (the state, nonce
//! and PKCE verifier, sealed with the data dir's key: a cookie nobody can
//! read or forge); [`finish`] checks the state, exchanges the code with
//! the verifier, verifies the ID token (signature against the provider's
//! keys, issuer, audience, nonce, expiry), reads the user's name and
//! groups, maps the groups to roles and teams, and opens a session for
//! the account (made, or updated, at each login).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use haven_model::access::{Role, User, check_name};
use haven_store::Store;
use jiff::{SignedDuration, Timestamp};
use openidconnect::core::{CoreClient, CoreGenderClaim, CoreProviderMetadata, CoreResponseType};
use openidconnect::{
    AdditionalClaims, AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    HttpRequest, HttpResponse, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, UserInfoClaims,
};
use serde::{Deserialize, Serialize};

use super::AccessError;
use super::login::{Granted, open_session};
use super::seal::Sealer;
use crate::instance::{AccessSettings, OidcSettings};

/// How long a browser may take at the provider.
const PENDING_FOR: SignedDuration = SignedDuration::from_mins(10);

/// Where to send the browser, and what it keeps meanwhile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcStart {
    /// The provider's authorization URL.
    pub url: String,
    /// The sealed state, nonce and verifier (the `haven_oidc` cookie).
    pub pending: String,
}

/// What the provider sent the browser back with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcCallback {
    /// The authorization code.
    pub code: String,
    /// The state it was given.
    pub state: String,
    /// The browser's `haven_oidc` cookie.
    pub pending: String,
}

/// What the browser keeps while at the provider (sealed).
#[derive(Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    started: Timestamp,
}

/// Every claim of the user info, beside the standard ones.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct OtherClaims(HashMap<String, serde_json::Value>);

impl AdditionalClaims for OtherClaims {}

/// The provider's URL to send the browser to.
pub async fn begin(
    oidc: &OidcSettings,
    sealer: &Sealer,
    now: Timestamp,
) -> Result<OidcStart, AccessError> {
    let http = http_client()?;
    let client = client(oidc, &http).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let pending = Pending {
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
        started: now,
    };
    let text = serde_json::to_vec(&pending).map_err(|e| sso(format!("{e}")))?;
    Ok(OidcStart {
        url: url.to_string(),
        pending: sealer.seal(&text)?,
    })
}

/// Check what the provider sent back and open a session.
pub async fn finish(
    store: &dyn Store,
    sealer: &Sealer,
    access: &AccessSettings,
    oidc: &OidcSettings,
    now: Timestamp,
    callback: &OidcCallback,
) -> Result<Granted, AccessError> {
    let pending: Pending = serde_json::from_slice(&sealer.open_sealed(&callback.pending)?)
        .map_err(|_| sso("the sign-on cookie does not read: start again".into()))?;
    if now.duration_since(pending.started) > PENDING_FOR {
        return Err(sso(
            "the sign-on took longer than 10 minutes: start again".into()
        ));
    }
    let state_ok = aws_lc_rs::constant_time::verify_slices_are_equal(
        pending.state.as_bytes(),
        callback.state.as_bytes(),
    )
    .is_ok();
    if !state_ok {
        return Err(sso(
            "the provider's answer is not for this browser's sign-on (state mismatch)".into(),
        ));
    }
    let http = http_client()?;
    let client = client(oidc, &http).await?;
    let tokens = client
        .exchange_code(AuthorizationCode::new(callback.code.clone()))
        .map_err(|e| sso(format!("the provider has no token endpoint: {e}")))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
        .request_async(&http)
        .await
        .map_err(|e| sso(format!("the provider refused the code: {}", chain(&e))))?;
    let id_token = tokens
        .id_token()
        .ok_or_else(|| sso("the provider sent no ID token".into()))?;
    let id_claims = id_token
        .claims(&client.id_token_verifier(), &Nonce::new(pending.nonce))
        .map_err(|e| sso(format!("the ID token does not verify: {e}")))?;
    let info: UserInfoClaims<OtherClaims, CoreGenderClaim> = client
        .user_info(
            tokens.access_token().clone(),
            Some(id_claims.subject().clone()),
        )
        .map_err(|e| sso(format!("the provider has no user info endpoint: {e}")))?
        .request_async(&http)
        .await
        .map_err(|e| sso(format!("the provider's user info: {}", chain(&e))))?;
    let user = account(store, oidc, &info).await?;
    open_session(store, access, now, &user, "oidc").await
}

/// The account `info` signs on as, made or updated from its groups.
async fn account(
    store: &dyn Store,
    oidc: &OidcSettings,
    info: &UserInfoClaims<OtherClaims, CoreGenderClaim>,
) -> Result<User, AccessError> {
    let name = claim_text(info, &oidc.username_claim).ok_or_else(|| {
        sso(format!(
            "the provider gave no {:?} claim to name the user by (access.oidc.username_claim)",
            oidc.username_claim
        ))
    })?;
    check_name("the signed-on user's name", &name).map_err(sso)?;
    let groups = claim_list(info, &oidc.groups_claim);
    let mut roles: Vec<Role> = groups
        .iter()
        .filter_map(|g| oidc.roles.get(g))
        .flatten()
        .copied()
        .collect();
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        return Err(sso(format!(
            "{name} signed on, but none of its groups ({}) has a role in Haven (access.oidc.roles)",
            groups.join(", ")
        )));
    }
    let mut teams: Vec<String> = groups
        .iter()
        .filter_map(|g| oidc.teams.get(g))
        .flatten()
        .cloned()
        .collect();
    teams.sort();
    teams.dedup();
    let now = Timestamp::now();
    let existing = store.users().await?.into_iter().find(|u| u.name == name);
    let user = match existing {
        Some(local) if !local.sso => {
            return Err(sso(format!(
                "{name} is a local user with a password: single sign-on does not take over local accounts"
            )));
        }
        Some(known) if known.disabled => {
            return Err(AccessError::LoginFailed(format!(
                "{name} is disabled in Haven"
            )));
        }
        Some(known) => User {
            roles,
            teams,
            ..known
        },
        None => User {
            name,
            roles,
            teams,
            password_hash: String::new(),
            disabled: false,
            created_at: now,
            password_set_at: now,
            totp_sealed: String::new(),
            totp: false,
            totp_step: 0,
            sso: true,
            failed_logins: 0,
            lockouts: 0,
            locked_until: None,
        },
    };
    store.put_user(&user).await?;
    Ok(user)
}

/// A claim's text: the standard ones by name, the others as given.
fn claim_text(info: &UserInfoClaims<OtherClaims, CoreGenderClaim>, name: &str) -> Option<String> {
    match name {
        "sub" => Some(info.subject().to_string()),
        "email" => info.email().map(|e| e.to_string()),
        "preferred_username" => info.preferred_username().map(|u| u.to_string()),
        other => info
            .additional_claims()
            .0
            .get(other)
            .and_then(|v| v.as_str())
            .map(str::to_string),
    }
}

/// A claim holding a list of names (or one name).
fn claim_list(info: &UserInfoClaims<OtherClaims, CoreGenderClaim>, name: &str) -> Vec<String> {
    match info.additional_claims().0.get(name) {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(serde_json::Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

type Client = openidconnect::Client<
    openidconnect::EmptyAdditionalClaims,
    openidconnect::core::CoreAuthDisplay,
    CoreGenderClaim,
    openidconnect::core::CoreJweContentEncryptionAlgorithm,
    openidconnect::core::CoreJsonWebKey,
    openidconnect::core::CoreAuthPrompt,
    openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    openidconnect::core::CoreTokenResponse,
    openidconnect::core::CoreTokenIntrospectionResponse,
    openidconnect::core::CoreRevocableToken,
    openidconnect::core::CoreRevocationErrorResponse,
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// The provider's client, from its discovery document.
async fn client(oidc: &OidcSettings, http: &HttpClient) -> Result<Client, AccessError> {
    let issuer =
        IssuerUrl::new(oidc.issuer.clone()).map_err(|e| sso(format!("access.oidc.issuer: {e}")))?;
    let metadata = CoreProviderMetadata::discover_async(issuer, http)
        .await
        .map_err(|e| {
            sso(format!(
                "cannot read the provider's discovery document at {}: {}",
                oidc.issuer,
                chain(&e)
            ))
        })?;
    let secret = match &oidc.client_secret {
        Some(reference) => Some(ClientSecret::new(
            crate::instance::secrets::read_secret(reference)
                .map_err(|e| sso(format!("access.oidc.client_secret: {e}")))?,
        )),
        None => None,
    };
    let redirect = RedirectUrl::new(oidc.redirect_url.clone())
        .map_err(|e| sso(format!("access.oidc.redirect_url: {e}")))?;
    Ok(
        CoreClient::from_provider_metadata(metadata, ClientId::new(oidc.client_id.clone()), secret)
            .set_redirect_uri(redirect),
    )
}

/// The provider's HTTP errors (its words, never a token).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpFailure(String);

type HttpFuture = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpFailure>> + Send>>;

/// Haven's one HTTP client, as the OpenID Connect library calls it; it
/// never follows redirects (a provider cannot send it elsewhere).
struct HttpClient(reqwest::Client);

impl<'c> openidconnect::AsyncHttpClient<'c> for HttpClient {
    type Error = HttpFailure;
    type Future = HttpFuture;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        let client = self.0.clone();
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)
                .map_err(|e| HttpFailure(format!("a request to the provider: {e}")))?;
            let response = client
                .execute(request)
                .await
                .map_err(|e| HttpFailure(e.without_url().to_string()))?;
            let mut answer = HttpResponse::new(Vec::new());
            *answer.status_mut() = response.status();
            *answer.headers_mut() = response.headers().clone();
            *answer.body_mut() = response
                .bytes()
                .await
                .map_err(|e| HttpFailure(e.to_string()))?
                .to_vec();
            Ok(answer)
        })
    }
}

fn http_client() -> Result<HttpClient, AccessError> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .build()
        .map(HttpClient)
        .map_err(|e| sso(format!("cannot make an HTTP client: {e}")))
}

fn sso(why: String) -> AccessError {
    AccessError::LoginFailed(format!("single sign-on: {why}"))
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
