//! `haven repo init`: create a repository.

use anyhow::Result;
use haven_engine::{InitOptions, Repository};
use serde::Serialize;

use crate::cli::{GlobalArgs, InitArgs};
use crate::{context, exit, output};

#[derive(Serialize)]
struct InitView {
    repository_id: String,
    location: String,
    compression_level: i32,
    pack_size: u64,
}

pub fn run(global: &GlobalArgs, args: &InitArgs) -> Result<u8> {
    if args.all {
        return all(global, args);
    }
    let location = context::location(global)?;
    let password = context::password(global, true)?;
    let options = InitOptions {
        compression_level: args.compression,
        pack_size: args.pack_size_mib * 1024 * 1024,
        ..InitOptions::default()
    };
    let repo = Repository::init(&location, &password, &options)?;
    let view = InitView {
        repository_id: repo.config().id.to_hex(),
        location: location.to_string(),
        compression_level: repo.config().compression_level,
        pack_size: repo.config().pack_size,
    };
    if global.json {
        output::print_json(&view)?;
    } else {
        println!(
            "created repository {} at {}",
            &view.repository_id[..8],
            view.location
        );
        println!("keep the password safe: without it the data cannot be recovered");
    }
    Ok(exit::SUCCESS)
}

/// One catalog repository, as `repo init --all` left it.
#[derive(Serialize)]
struct CatalogRepo {
    id: String,
    location: String,
    /// `created`, `exists` or `failed`.
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    repository_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `haven repo init --all`: every catalog repository that does not exist
/// yet, with its declared password.
fn all(global: &GlobalArgs, args: &InitArgs) -> Result<u8> {
    let dir = match &args.catalog {
        Some(dir) => dir.clone(),
        None => crate::cli::default_catalog(global)?,
    };
    let loaded = haven_catalog::load_dir(&dir)?;
    let options = InitOptions {
        compression_level: args.compression,
        pack_size: args.pack_size_mib * 1024 * 1024,
        ..InitOptions::default()
    };
    let mut results = Vec::new();
    for repo in &loaded.catalog.repositories {
        let id = repo.id.value.to_string();
        let made =
            haven_ops::instance::repository_password(&id, repo.password.as_ref().map(|p| &p.value))
                .map_err(anyhow::Error::from)
                .and_then(|password| {
                    let location = haven_engine::Location::parse(&repo.url.value)?;
                    Ok(Repository::init(&location, &password, &options)?)
                });
        let (outcome, repository_id, error) = match made {
            Ok(r) => ("created", Some(r.config().id.to_hex()), None),
            Err(e)
                if matches!(
                    e.downcast_ref(),
                    Some(haven_engine::Error::RepositoryExists { .. })
                ) =>
            {
                ("exists", None, None)
            }
            Err(e) => ("failed", None, Some(format!("{e:#}"))),
        };
        results.push(CatalogRepo {
            id,
            location: repo.url.value.clone(),
            outcome,
            repository_id,
            error,
        });
    }
    let failed = results.iter().filter(|r| r.outcome == "failed").count();
    if global.json {
        output::print_json(&results)?;
    } else {
        for r in &results {
            match (&r.repository_id, &r.error) {
                (Some(rid), _) => println!(
                    "{}: created repository {} at {}",
                    r.id,
                    &rid[..8],
                    r.location
                ),
                (_, Some(e)) => println!("{}: FAILED: {e}", r.id),
                _ => println!("{}: exists at {}", r.id, r.location),
            }
        }
        if results.iter().any(|r| r.outcome == "created") {
            println!("keep the passwords safe: without them the data cannot be recovered");
        }
    }
    Ok(if failed == 0 {
        exit::SUCCESS
    } else {
        exit::FAILURE
    })
}
