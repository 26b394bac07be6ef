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
