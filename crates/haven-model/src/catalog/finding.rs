//! Findings: what catalog validation and analysis report.

use serde::Serialize;

use super::Origin;

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The catalog is wrong or a commitment cannot be met: `check` fails.
    Error,
    /// A risk or an inconsistency to look at: `check` passes.
    Warning,
}

/// An object a finding is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectRef {
    /// `service`, `system`, `policy`, `repository`, `team`, `vendor`, `regulation`.
    pub kind: &'static str,
    /// Its id.
    pub id: String,
}

impl ObjectRef {
    /// Refer to an object.
    pub fn new(kind: &'static str, id: impl Into<String>) -> Self {
        ObjectRef {
            kind,
            id: id.into(),
        }
    }
}

/// One problem or risk, with a stable code.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// Stable code, e.g. `HVN-E010`. Codes are never reused.
    pub code: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: String,
    /// The objects involved.
    pub objects: Vec<ObjectRef>,
    /// Where to point (the most specific value involved).
    #[serde(skip)]
    pub at: Option<Origin>,
    /// A second place that explains the first (`first defined here`).
    #[serde(skip)]
    pub related: Option<(&'static str, Origin)>,
}

impl Finding {
    /// An error.
    pub fn error(code: &'static str, message: impl Into<String>, help: impl Into<String>) -> Self {
        Finding {
            code,
            severity: Severity::Error,
            message: message.into(),
            help: help.into(),
            objects: Vec::new(),
            at: None,
            related: None,
        }
    }

    /// A warning.
    pub fn warning(
        code: &'static str,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        Finding {
            severity: Severity::Warning,
            ..Finding::error(code, message, help)
        }
    }

    /// Point at `origin`.
    pub fn at(mut self, origin: Origin) -> Self {
        self.at = Some(origin);
        self
    }

    /// Also point at `origin`, saying what it is (`first defined`).
    pub fn related(mut self, what: &'static str, origin: Origin) -> Self {
        self.related = Some((what, origin));
        self
    }

    /// Name an object involved.
    pub fn object(mut self, kind: &'static str, id: impl Into<String>) -> Self {
        self.objects.push(ObjectRef::new(kind, id));
        self
    }
}
