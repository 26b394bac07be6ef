//! `haven user …` and `haven token …`: local users and API tokens.

use std::io::BufRead as _;

use anyhow::{Context, Result};
use haven_model::access::{Owner, Token, User};
use haven_ops::api::{NewToken, NewUser, TokenRevocation, UserChange};

use crate::cli::{GlobalArgs, TokenCommand, UserCommand};
use crate::{exit, instance, output};

pub fn user(global: &GlobalArgs, command: &UserCommand) -> Result<u8> {
    let instance_args = match command {
        UserCommand::Add { instance, .. }
        | UserCommand::List { instance }
        | UserCommand::Disable { instance, .. }
        | UserCommand::ResetPassword { instance, .. }
        | UserCommand::Roles { instance, .. }
        | UserCommand::Totp { instance, .. } => instance,
    };
    let settings = instance::settings(global, Some(instance_args), None)?;
    let by = instance::actor(None).to_string();
    // Asked for before anything else happens (no runtime, no database).
    let password = match command {
        UserCommand::Add {
            name,
            password_stdin,
            ..
        }
        | UserCommand::ResetPassword {
            name,
            password_stdin,
            ..
        } => Some(read_password(name, *password_stdin)?),
        _ => None,
    };
    let rt = instance::runtime()?;
    rt.block_on(async {
        let instance = instance::connect(&settings).await?;
        if let UserCommand::Totp { name, .. } = command {
            let enrolled = instance.user_totp(name).await?;
            if global.json {
                output::print_json(&enrolled)?;
            } else {
                println!(
                    "TOTP for {} (shown this once; put it into an authenticator app):\n  secret: {}\n  uri:    {}",
                    enrolled.user, enrolled.secret, enrolled.uri
                );
            }
            return Ok(exit::SUCCESS);
        }
        let shown = change_users(instance.as_ref(), command, password, by).await?;
        if global.json {
            output::print_json(&shown)?;
        } else {
            print_users(&shown);
        }
        Ok(exit::SUCCESS)
    })
}

/// Make the change `command` asks for (or list): the users it touched.
async fn change_users(
    instance: &dyn haven_ops::api::Instance,
    command: &UserCommand,
    password: Option<String>,
    by: String,
) -> Result<Vec<User>> {
    let change = |name: &String, password, roles, teams| UserChange {
        name: name.clone(),
        password,
        roles,
        teams,
        by: by.clone(),
    };
    let changed = match command {
        UserCommand::Add {
            name, roles, teams, ..
        } => {
            let request = NewUser {
                name: name.clone(),
                roles: roles.clone(),
                teams: teams.clone(),
                password: password.unwrap_or_default(),
                by: by.clone(),
            };
            instance.user_add(&request).await?
        }
        UserCommand::List { .. } | UserCommand::Totp { .. } => return Ok(instance.users().await?),
        UserCommand::Roles {
            name, roles, teams, ..
        } => {
            let teams = (!teams.is_empty()).then(|| teams.clone());
            let roles = Some(roles.clone());
            instance
                .user_change(&change(name, None, roles, teams))
                .await?
        }
        UserCommand::Disable { name, .. } | UserCommand::ResetPassword { name, .. } => {
            instance
                .user_change(&change(name, password, None, None))
                .await?
        }
    };
    Ok(vec![changed])
}

fn print_users(users: &[User]) {
    for u in users {
        println!(
            "{:<20} {:<40} {}{}{}",
            u.name,
            u.roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(","),
            u.teams.join(","),
            if u.totp { "  (totp)" } else { "" },
            if u.disabled { "  (disabled)" } else { "" }
        );
    }
}

pub fn token(global: &GlobalArgs, command: &TokenCommand) -> Result<u8> {
    let instance_args = match command {
        TokenCommand::Create { instance, .. }
        | TokenCommand::List { instance }
        | TokenCommand::Revoke { instance, .. } => instance,
    };
    let settings = instance::settings(global, Some(instance_args), None)?;
    let by = instance::actor(None).to_string();
    let rt = instance::runtime()?;
    rt.block_on(async {
        let instance = instance::connect(&settings).await?;
        match command {
            TokenCommand::Create {
                name,
                user,
                automation,
                roles,
                expires,
                ..
            } => {
                let owner = match (user, automation) {
                    (Some(u), _) => Owner::User(u.clone()),
                    (None, Some(a)) => Owner::Automation(a.clone()),
                    (None, None) => {
                        anyhow::bail!("name the token's owner: --user NAME or --automation NAME")
                    }
                };
                let request = NewToken {
                    name: name.clone(),
                    owner,
                    roles: roles.clone(),
                    lifetime: *expires,
                    by,
                };
                let created = instance.token_create(&request).await?;
                if global.json {
                    output::print_json(&created)?;
                } else {
                    eprintln!(
                        "token {} made, expires {}; its secret (shown this once, keep it safe):",
                        created.token.id, created.token.expires_at
                    );
                    println!("{}", created.secret);
                }
            }
            TokenCommand::List { .. } => print_tokens(global, &instance.tokens().await?)?,
            TokenCommand::Revoke { id, .. } => {
                let request = TokenRevocation { id: id.clone(), by };
                print_tokens(global, &[instance.token_revoke(&request).await?])?;
            }
        }
        Ok(exit::SUCCESS)
    })
}

fn print_tokens(global: &GlobalArgs, tokens: &[Token]) -> Result<()> {
    if global.json {
        return output::print_json(&tokens);
    }
    for t in tokens {
        let owner = match &t.owner {
            Owner::User(u) => format!("user:{u}"),
            Owner::Automation(a) => format!("automation:{a}"),
        };
        println!(
            "{:<14} {:<20} {:<24} {:<30} expires {}{}",
            t.id,
            t.name,
            owner,
            t.roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(","),
            t.expires_at,
            if t.revoked_at.is_some() {
                "  (revoked)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// A new password: the first line of stdin, or asked for twice.
fn read_password(name: &str, from_stdin: bool) -> Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let first = rpassword::prompt_password(format!("password for {name}: "))
        .context("cannot read the password (no terminal? use --password-stdin)")?;
    let again = rpassword::prompt_password("repeat it: ").context("cannot read the password")?;
    if first != again {
        anyhow::bail!("the two passwords differ");
    }
    Ok(first)
}
