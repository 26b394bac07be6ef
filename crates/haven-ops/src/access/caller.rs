//! Who acts on an instance, as its access checks and its audit log see
//! them: the identity a token or session proved (with its roles and the
//! teams a service owner acts for), or the instance's owner — whoever
//! holds the data dir or its `api-token` file, who holds its keys and
//! acts as an admin.

use haven_model::access::{Permission, Role, allowed, owner_may, owns_service, owns_system};
use haven_model::catalog::Catalog;
use serde::{Deserialize, Serialize};

use super::Identity;

/// Who acts, with what rights, from where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// As recorded: `user:ana (tok_1a2b)`, `api-token`, `local:root`.
    pub actor: String,
    /// The user behind it (none: the instance's owner or an automation).
    pub user: Option<String>,
    /// The roles it acts with.
    pub roles: Vec<Role>,
    /// Its user's teams (a service owner acts on what they own).
    pub teams: Vec<String>,
    /// From where: `cli`, `api 127.0.0.1:51234`.
    pub origin: String,
    /// An admin's reason to bypass four eyes (break-glass).
    pub break_glass: Option<String>,
}

/// What a change acts on, for a service owner's scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum On {
    /// The instance as a whole (maintenance, users, the audit log).
    Instance,
    /// One system.
    System(String),
    /// These services (one, or a recovery's).
    Services(Vec<String>),
}

impl Caller {
    /// The instance's owner (the data dir's account, or its api-token):
    /// an admin.
    pub fn owner(actor: impl Into<String>, origin: impl Into<String>) -> Caller {
        Caller {
            actor: actor.into(),
            user: None,
            roles: vec![Role::Admin],
            teams: Vec::new(),
            origin: origin.into(),
            break_glass: None,
        }
    }

    /// Whoever a token or session proved to be.
    pub fn identified(identity: &Identity, origin: impl Into<String>) -> Caller {
        Caller {
            actor: identity.actor.clone(),
            user: identity.user.clone(),
            roles: identity.roles.clone(),
            teams: identity.teams.clone(),
            origin: origin.into(),
            break_glass: None,
        }
    }

    /// Its roles as recorded (`operator,approver`).
    pub fn role_text(&self) -> String {
        self.roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Does deciding `permission` on `on` need the catalog (a service
    /// owner acting on what may be its own)?
    pub fn needs_catalog(&self, permission: Permission, on: &On) -> bool {
        !allowed(&self.roles, permission)
            && self.roles.contains(&Role::ServiceOwner)
            && owner_may(permission)
            && *on != On::Instance
    }

    /// May it do what needs `permission` on `on`? `Err` says why not.
    /// `catalog` is needed only when [`Caller::needs_catalog`] says so.
    pub fn may(
        &self,
        permission: Permission,
        on: &On,
        catalog: Option<&Catalog>,
    ) -> Result<(), String> {
        if allowed(&self.roles, permission) {
            return Ok(());
        }
        let owner = self.roles.contains(&Role::ServiceOwner) && owner_may(permission);
        let owned = |what: &str, id: &str, owns: bool| {
            if owns {
                Ok(())
            } else {
                Err(format!(
                    "{} acts as a service owner for {}: {what} {id} is not theirs",
                    self.actor,
                    self.teams_text()
                ))
            }
        };
        match on {
            _ if !owner => Err(format!(
                "{} may not do this: it needs {} permission, which none of its roles ({}) grants",
                self.actor,
                permission_name(permission),
                self.role_text()
            )),
            On::Instance => Err(format!(
                "{} may not do this: a service owner acts on its teams' services, and this is not one",
                self.actor
            )),
            On::System(id) => owned(
                "system",
                id,
                catalog.is_some_and(|c| owns_system(c, &self.teams, id)),
            ),
            On::Services(ids) => ids.iter().try_for_each(|id| {
                owned(
                    "service",
                    id,
                    catalog.is_some_and(|c| owns_service(c, &self.teams, id)),
                )
            }),
        }
    }

    fn teams_text(&self) -> String {
        if self.teams.is_empty() {
            "no team".into()
        } else {
            format!("team {}", self.teams.join(", "))
        }
    }
}

/// A permission's name as written in docs and messages.
pub fn permission_name(permission: Permission) -> &'static str {
    match permission {
        Permission::Read => "read",
        Permission::Operate => "operate",
        Permission::Restore => "restore",
        Permission::Approve => "approve",
        Permission::Audit => "audit",
        Permission::Admin => "admin",
    }
}
