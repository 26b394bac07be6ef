//! `[[plan]]` and `[[service.recovery]]`: how a recovery runs.

use haven_model::catalog::recovery::{
    DEFAULT_CONCURRENCY, PlanServices, RecoveryPlan, RecoveryStep, StepAction,
};
use toml_span::de_helpers::TableHelper;
use toml_span::value::{Value, ValueInner};

use super::Reader;

const STEP_TYPES: &str = "command, sql, http, tcp, wait, checkpoint";

impl Reader<'_> {
    pub(super) fn plan(&mut self, th: &mut TableHelper<'_>) -> Option<RecoveryPlan> {
        let id = self.id(th, "plan");
        let description = th.optional::<String>("description");
        let services = match th.take("services") {
            Some((_, mut value)) => self.plan_services(&mut value)?,
            None => {
                let at = id
                    .as_ref()
                    .map(|i: &haven_model::catalog::Located<String>| i.at);
                let span = at.map_or(toml_span::Span::new(0, 0), |a| {
                    toml_span::Span::new(a.start, a.end)
                });
                self.invalid(
                    span,
                    "a plan needs `services`: a list of service ids, or \"all\"".into(),
                    "e.g. services = [\"erp\", \"webshop\"] (what they need comes too), or services = \"all\"",
                );
                return None;
            }
        };
        let concurrency = match self.count(th, "concurrency") {
            Some(c) if c.value == 0 => {
                let span = toml_span::Span::new(c.at.start, c.at.end);
                self.invalid(
                    span,
                    "`concurrency` must be at least 1".into(),
                    "how many services are restored side by side, e.g. concurrency = 4",
                );
                return None;
            }
            Some(c) => c.value,
            None => DEFAULT_CONCURRENCY,
        };
        let defer_tiers = self.tiers(th, "defer_tiers");
        Some(RecoveryPlan {
            id: id?,
            description,
            services,
            concurrency,
            defer_tiers,
        })
    }

    fn plan_services(&mut self, value: &mut Value<'_>) -> Option<PlanServices> {
        let span = value.span;
        match value.take() {
            ValueInner::String(s) if s == "all" => Some(PlanServices::All),
            ValueInner::Array(items) => {
                let mut out = Vec::new();
                for mut item in items {
                    let item_span = item.span;
                    match item.take() {
                        ValueInner::String(s) => out.push(haven_model::catalog::Located::new(
                            s.into_owned(),
                            self.origin(item_span),
                        )),
                        other => self.invalid(
                            item_span,
                            format!("`services` lists service ids, found {}", other.type_str()),
                            "e.g. services = [\"erp\", \"webshop\"]",
                        ),
                    }
                }
                Some(PlanServices::Listed(out))
            }
            other => {
                self.invalid(
                    span,
                    format!(
                        "`services` must be a list of service ids or \"all\", found {}",
                        describe(&other)
                    ),
                    "e.g. services = [\"erp\", \"webshop\"], or services = \"all\"",
                );
                None
            }
        }
    }

    /// A service's `[[service.recovery]]` steps.
    pub(super) fn recovery_steps(&mut self, th: &mut TableHelper<'_>) -> Vec<RecoveryStep> {
        let mut steps = Vec::new();
        let Some((_, mut list)) = th.take("recovery") else {
            return steps;
        };
        for mut item in self.tables(&mut list, "service.recovery") {
            let span = item.span;
            if let Some(mut st) = self.table(&mut item, "service.recovery") {
                if let Some(step) = self.recovery_step(&mut st, span) {
                    steps.push(step);
                }
                self.finish(st, "service.recovery");
            }
        }
        steps
    }

    fn recovery_step(
        &mut self,
        th: &mut TableHelper<'_>,
        span: toml_span::Span,
    ) -> Option<RecoveryStep> {
        let name = th.optional::<String>("name");
        let critical = th.optional::<bool>("critical").unwrap_or(true);
        let timeout = self.duration(th, "timeout").map(|d| d.value);
        let kind = th.required_s::<String>("type").ok()?;
        let env = |reader: &mut Self, th: &mut TableHelper<'_>| {
            reader
                .env(th, "service.recovery")
                .map(|e| e.value)
                .unwrap_or_default()
        };
        let action = match kind.value.as_str() {
            "command" => StepAction::Command {
                run: th.required("run").ok()?,
                expect_exit: th.optional("expect_exit").unwrap_or(0),
                expect_output: th.optional("expect_output"),
                env: env(self, th),
            },
            "sql" => StepAction::Sql {
                query: th.required("query").ok()?,
                expect: th.required("expect").ok()?,
                env: env(self, th),
            },
            "http" => StepAction::Http {
                url: th.required("url").ok()?,
                expect_status: th.optional("expect_status").unwrap_or(200),
            },
            "tcp" => StepAction::Tcp {
                address: th.required("address").ok()?,
            },
            "wait" => {
                let Some(duration) = self.duration(th, "duration") else {
                    self.invalid(
                        kind.span,
                        "a `wait` step needs a `duration`".into(),
                        "e.g. duration = \"5m\"",
                    );
                    return None;
                };
                StepAction::Wait {
                    duration: duration.value,
                }
            }
            "checkpoint" => StepAction::Checkpoint {
                prompt: th.required("prompt").ok()?,
            },
            other => {
                self.invalid(
                    kind.span,
                    format!("recovery step type {other:?} is not one of {STEP_TYPES}"),
                    "use type = \"command\", \"sql\", \"http\", \"tcp\", \"wait\" or \"checkpoint\"",
                );
                return None;
            }
        };
        Some(RecoveryStep {
            name,
            action,
            critical,
            timeout,
            at: self.origin(span),
        })
    }
}

fn describe(value: &ValueInner<'_>) -> String {
    match value {
        ValueInner::String(s) => format!("{s:?}"),
        other => other.type_str().to_string(),
    }
}
