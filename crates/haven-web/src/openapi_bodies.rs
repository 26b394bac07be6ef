//! What each API route takes and answers, as JSON Schemas generated from
//! the very types the handlers read and write (`schemars`, from their
//! serde attributes; their doc comments become the descriptions). The
//! OpenAPI document puts them in `components/schemas`; a route missing
//! here is a test failure, not a silently untyped route.

use haven_model::audit::{Entry, Export};
use haven_model::drills::{Drill, ServiceDrill};
use haven_model::jobs::Job;
use haven_model::recovery::Forecast;
use haven_model::recovery::run::{RecoveryRun, RunView};
use haven_ops::api::*;
use schemars::{JsonSchema, Schema, SchemaGenerator};

/// A schema's maker: a `$ref` into the components for a named type.
pub(crate) type Maker = fn(&mut SchemaGenerator) -> Schema;

fn of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// What a route takes and answers.
pub(crate) struct Bodies {
    /// Its JSON body (POST).
    pub request: Option<Maker>,
    /// Its query string's fields (GET).
    pub query: Option<Maker>,
    /// Its answer on success.
    pub answer: Maker,
    /// The status of that answer.
    pub status: &'static str,
}

const fn get(answer: Maker) -> Bodies {
    Bodies {
        request: None,
        query: None,
        answer,
        status: "200",
    }
}

const fn listed(query: Maker, answer: Maker) -> Bodies {
    Bodies {
        request: None,
        query: Some(query),
        answer,
        status: "200",
    }
}

const fn post(request: Option<Maker>, answer: Maker, status: &'static str) -> Bodies {
    Bodies {
        request,
        query: None,
        answer,
        status,
    }
}

/// The bodies of route `method pattern` (as in [`crate::access::ROUTES`]).
pub(crate) fn bodies(method: &str, pattern: &str) -> Option<Bodies> {
    Some(match (method, pattern) {
        ("GET", "/status") => get(of::<haven_ops::status::StatusReport>),
        ("GET", "/services/{id}") => get(of::<haven_ops::status::ServiceDetail>),
        ("GET", "/catalog/findings") => get(of::<Vec<haven_ops::status::FindingView>>),
        ("GET", "/catalog/graph") => get(of::<haven_ops::status::CatalogGraph>),
        ("GET", "/bia") => listed(of::<BiaQuery>, of::<Vec<haven_model::catalog::bia::BiaRow>>),
        ("GET", "/plan/order") => listed(
            of::<OrderQuery>,
            of::<haven_model::catalog::plan::RecoveryOrder>,
        ),
        ("GET", "/jobs") => listed(of::<JobsQuery>, of::<Vec<Job>>),
        ("GET", "/jobs/{id}") => get(of::<Job>),
        ("POST", "/systems/{system}/run") => post(None, of::<RunOutcome>, "202"),
        ("GET", "/alerts") => listed(of::<AlertsQuery>, of::<Vec<haven_model::alerts::Alert>>),
        ("GET", "/alerts/{id}") => get(of::<AlertDetail>),
        ("POST", "/alerts/{id}/ack") => post(None, of::<haven_model::alerts::Alert>, "200"),
        ("POST", "/alerts/{id}/resolve") => post(
            Some(of::<crate::ResolveBody>),
            of::<haven_model::alerts::Alert>,
            "200",
        ),
        ("GET", "/maintenance") => get(of::<Vec<WindowView>>),
        ("POST", "/maintenance") => post(
            Some(of::<NewWindow>),
            of::<haven_model::maintenance::Recorded>,
            "201",
        ),
        ("POST", "/maintenance/{id}/end") => {
            post(None, of::<haven_model::maintenance::Recorded>, "200")
        }
        ("POST", "/channels/{id}/test") => post(None, of::<haven_ops::delivery::Report>, "200"),
        ("GET", "/preflight") => get(of::<PreflightReport>),
        ("POST", "/drills") => post(Some(of::<DrillRequest>), of::<DrillOutcome>, "200"),
        ("GET", "/drills") => listed(of::<DrillsQuery>, of::<Vec<Drill>>),
        ("POST", "/service-drills") => post(
            Some(of::<ServiceDrillRequest>),
            of::<ServiceDrillOutcome>,
            "200",
        ),
        ("GET", "/service-drills") => listed(of::<ServiceDrillsQuery>, of::<Vec<ServiceDrill>>),
        ("POST", "/recovery/forecast") => post(Some(of::<ForecastRequest>), of::<Forecast>, "200"),
        ("POST", "/recoveries") => post(Some(of::<RecoverRequest>), of::<RunView>, "201"),
        ("GET", "/recoveries") => get(of::<Vec<RecoveryRun>>),
        ("GET", "/recoveries/{id}") => get(of::<RunView>),
        ("POST", "/recoveries/{id}/resume") => {
            post(Some(of::<ResumeRequest>), of::<RunView>, "200")
        }
        ("POST", "/recoveries/{id}/abandon") => {
            post(Some(of::<AbandonRequest>), of::<RunView>, "200")
        }
        ("POST", "/recoveries/{id}/steps/{step}/decide") => {
            post(Some(of::<StepDecision>), of::<RunView>, "200")
        }
        ("POST", "/audit/verify") => post(
            Some(of::<AuditVerifyRequest>),
            of::<haven_ops::audit::AuditReport>,
            "200",
        ),
        ("POST", "/audit/anchor") => post(None, of::<Vec<haven_ops::audit::Anchoring>>, "200"),
        ("GET", "/audit/entries") => listed(of::<AuditQuery>, of::<Vec<Entry>>),
        ("GET", "/audit/export") => listed(of::<AuditExportQuery>, of::<Export>),
        ("POST", "/users") => post(Some(of::<NewUser>), of::<haven_model::access::User>, "201"),
        ("GET", "/users") => get(of::<Vec<haven_model::access::User>>),
        ("POST", "/users/{name}/change") => post(
            Some(of::<UserChange>),
            of::<haven_model::access::User>,
            "200",
        ),
        ("POST", "/users/{name}/totp") => post(None, of::<TotpEnrolment>, "200"),
        ("POST", "/tokens") => post(Some(of::<NewToken>), of::<CreatedToken>, "201"),
        ("GET", "/tokens") => get(of::<Vec<haven_model::access::Token>>),
        ("POST", "/tokens/{id}/revoke") => post(
            Some(of::<TokenRevocation>),
            of::<haven_model::access::Token>,
            "200",
        ),
        ("GET", "/holds") => listed(of::<HoldsQuery>, of::<Vec<HoldView>>),
        ("POST", "/holds") => post(Some(of::<HoldRequest>), of::<HoldView>, "201"),
        ("POST", "/holds/lift") => post(Some(of::<HoldRequest>), of::<HoldView>, "200"),
        ("GET", "/requests") => listed(
            of::<RequestsQuery>,
            of::<Vec<haven_model::approval::ApprovalRequest>>,
        ),
        ("GET", "/requests/{id}") => get(of::<haven_model::approval::ApprovalRequest>),
        ("POST", "/requests/{id}/decide") => post(
            Some(of::<crate::DecideBody>),
            of::<haven_model::approval::ApprovalRequest>,
            "200",
        ),
        _ => return None,
    })
}

/// Routes whose change may wait for a second person (`[access]
/// four_eyes`): they may answer 202 with the error shape naming the
/// request (`approval-required`).
pub(crate) fn four_eyes(method: &str, pattern: &str) -> bool {
    method == "POST"
        && matches!(
            pattern,
            "/recoveries" | "/users/{name}/change" | "/tokens/{id}/revoke" | "/holds/lift"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_says_what_it_takes_and_answers() {
        for (method, pattern, _, _) in crate::access::ROUTES {
            let bodies = bodies(method, pattern)
                .unwrap_or_else(|| panic!("{method} {pattern} has no bodies in openapi_bodies"));
            assert!(
                bodies.query.is_none() || *method == "GET",
                "{method} {pattern}: only a GET reads a query"
            );
        }
    }
}
