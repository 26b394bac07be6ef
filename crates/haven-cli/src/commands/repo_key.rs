//! `haven repo key list|add|remove|rotate`.

use anyhow::Result;
use haven_engine::KdfParams;
use serde_json::json;

use crate::cli::{GlobalArgs, KeyCommand};
use crate::{context, exit, output};

pub fn run(global: &GlobalArgs, command: &KeyCommand) -> Result<u8> {
    let repo = context::open(global)?;
    match command {
        KeyCommand::List => {
            let keys = repo.list_keys()?;
            if global.json {
                output::print_json(&keys)?;
            } else {
                println!(
                    "   {:<8}  {:<20}  {:<16}  user",
                    "id", "created (UTC)", "host"
                );
                for k in &keys {
                    println!(
                        "{} {:<8}  {:<20}  {:<16}  {}",
                        if k.current { "*" } else { " " },
                        k.short_id,
                        k.created.strftime("%Y-%m-%d %H:%M:%S"),
                        k.hostname,
                        k.username
                    );
                }
                println!("{} keys (* = the key used now)", keys.len());
            }
        }
        KeyCommand::Add(args) => {
            let password = context::new_password(args.new_password_file.as_deref())?;
            if password.is_empty() {
                anyhow::bail!("the new password must not be empty");
            }
            let id = repo.add_key(&password, KdfParams::default())?;
            if global.json {
                output::print_json(&json!({ "added": id.to_hex() }))?;
            } else {
                println!("added key {}", id.short());
            }
        }
        KeyCommand::Remove { key } => {
            let id = repo.find_key(key)?;
            repo.remove_key(&id)?;
            if global.json {
                output::print_json(&json!({ "removed": id.to_hex() }))?;
            } else {
                println!("removed key {}", id.short());
            }
        }
        KeyCommand::Rotate(args) => {
            let password = context::new_password(args.new_password_file.as_deref())?;
            let (added, removed) = repo.rotate_key(&password, KdfParams::default())?;
            if global.json {
                output::print_json(
                    &json!({ "added": added.to_hex(), "removed": removed.to_hex() }),
                )?;
            } else {
                println!(
                    "added key {} and removed key {}",
                    added.short(),
                    removed.short()
                );
                println!("the old password no longer opens the repository");
            }
        }
    }
    Ok(exit::SUCCESS)
}
