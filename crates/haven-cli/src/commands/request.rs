//! `haven request …`: four-eyes requests — list and show them, approve
//! (the change runs now, as its requester asked; a recovery is followed
//! like `haven recover` follows it), reject with a reason, and close a
//! break-glass change's review.

use anyhow::Result;
use haven_model::approval::{ApprovalRequest, RequestState};
use haven_ops::api::{Instance, RequestDecision, RequestsQuery, Verdict};

use crate::cli::{GlobalArgs, RequestCommand};
use crate::{exit, instance, output};

pub fn run(global: &GlobalArgs, command: &RequestCommand) -> Result<u8> {
    let instance_args = match command {
        RequestCommand::List { instance, .. }
        | RequestCommand::Show { instance, .. }
        | RequestCommand::Approve { instance, .. }
        | RequestCommand::Reject { instance, .. }
        | RequestCommand::Review { instance, .. } => instance,
    };
    let settings = instance::settings(global, Some(instance_args), None)?;
    let rt = instance::runtime()?;
    rt.block_on(async {
        let instance = instance::connect(&settings).await?;
        if let RequestCommand::List { state, .. } = command {
            let listed = instance.requests(&RequestsQuery { state: *state }).await?;
            if global.json {
                output::print_json(&listed)?;
            } else {
                print_list(&listed);
            }
            return Ok(exit::SUCCESS);
        }
        let request = match command {
            RequestCommand::Show { id, .. } => instance.request(*id).await?,
            _ => instance.decide_request(&decision(command)).await?,
        };
        // Approving a recovery follows the run it started; under --json
        // it answers with that run (one document, as `haven recover`).
        let approving = matches!(command, RequestCommand::Approve { .. });
        if !global.json {
            print_request(&request);
        } else if !approving || recovery_started(&request).is_none() {
            output::print_json(&request)?;
        }
        if !approving {
            return Ok(exit::SUCCESS);
        }
        follow_recovery(global, instance.as_ref(), &request).await
    })
}

fn decision(command: &RequestCommand) -> RequestDecision {
    let (id, verdict, note) = match command {
        RequestCommand::Approve { id, note, .. } => (*id, Verdict::Approve, note.clone()),
        RequestCommand::Reject { id, reason, .. } => (*id, Verdict::Reject, Some(reason.clone())),
        RequestCommand::Review { id, note, .. } => (*id, Verdict::Review, Some(note.clone())),
        RequestCommand::List { .. } | RequestCommand::Show { .. } => {
            unreachable!("list and show decide nothing")
        }
    };
    RequestDecision { id, verdict, note }
}

/// An approved recovery runs in this process when no server holds the
/// data dir: follow it to its end, as `haven recover` does.
async fn follow_recovery(
    global: &GlobalArgs,
    instance: &dyn Instance,
    request: &ApprovalRequest,
) -> Result<u8> {
    match (request.state, recovery_started(request)) {
        (RequestState::Approved, Some(run)) => {
            super::recover::follow_run(global, instance, run).await
        }
        (RequestState::Approved, None)
            if request
                .outcome
                .as_deref()
                .is_some_and(|o| o.starts_with("failed")) =>
        {
            Ok(exit::FAILURE)
        }
        _ => Ok(exit::SUCCESS),
    }
}

/// The recovery run an approved request started.
fn recovery_started(request: &ApprovalRequest) -> Option<i64> {
    request
        .outcome
        .as_deref()
        .filter(|_| request.state == RequestState::Approved)
        .and_then(|o| o.strip_prefix("recovery:"))
        .and_then(|id| id.parse::<i64>().ok())
}

fn print_list(requests: &[ApprovalRequest]) {
    if requests.is_empty() {
        println!("no requests");
        return;
    }
    println!(
        "{:>4}  {:<12} {:<20} {:<28} {:<32} requested",
        "id", "state", "action", "target", "by"
    );
    for r in requests {
        println!(
            "{:>4}  {:<12} {:<20} {:<28} {:<32} {}",
            r.id,
            r.state.as_str(),
            r.action,
            r.target,
            r.requested_by,
            r.requested_at
        );
    }
}

fn print_request(r: &ApprovalRequest) {
    println!("request {}: {} ({})", r.id, r.action, r.state.as_str());
    println!("  target:     {}", r.target);
    println!("  because:    {}", r.because);
    println!("  asked by:   {} at {}", r.requested_by, r.requested_at);
    if let Some(reason) = &r.reason {
        println!("  reason:     {reason}");
    }
    match r.state {
        RequestState::Pending => println!("  expires:    {}", r.expires_at),
        RequestState::BreakGlass => {
            let due = r.review_due.map(|d| d.to_string()).unwrap_or_default();
            match &r.review {
                Some(review) => println!(
                    "  reviewed:   by {} at {}: {}",
                    review.by,
                    review.at,
                    review.note.as_deref().unwrap_or("")
                ),
                None => println!("  review due: {due} (`haven request review {}`)", r.id),
            }
        }
        _ => {}
    }
    if let Some(decision) = &r.decision {
        let note = decision
            .note
            .as_deref()
            .map(|n| format!(": {n}"))
            .unwrap_or_default();
        println!("  decided:    by {} at {}{note}", decision.by, decision.at);
    }
    if let Some(outcome) = &r.outcome {
        println!("  outcome:    {outcome}");
    }
}
