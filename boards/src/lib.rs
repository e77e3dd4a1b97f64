//! Tessera board description: the platform and its partition plan.
//!
//! The EL2 image only sees the plain `no_std` tables of [`model`], generated at
//! build time from a board file (`boards/*.toml`) so that nothing untrusted is
//! parsed at EL2. The `build` feature (std, host only) holds the parser, the
//! checker, the address assignment and the Rust emitter used by the
//! hypervisor's `build.rs`.
#![no_std]

#[cfg(feature = "build")]
extern crate std;

pub mod guest;
pub mod model;

#[cfg(feature = "build")]
mod assign;
#[cfg(feature = "build")]
mod check;
#[cfg(feature = "build")]
pub mod cockpit;
#[cfg(feature = "build")]
mod emit;
#[cfg(feature = "build")]
mod error;
#[cfg(feature = "build")]
mod parse;
#[cfg(feature = "build")]
mod summary;

pub use model::*;

#[cfg(feature = "build")]
pub use build_api::*;

#[cfg(feature = "build")]
mod build_api {
    use std::path::Path;
    use std::prelude::rust_2021::*;

    pub use crate::error::{Error, Errors};
    pub use crate::parse::Board;

    /// Reads, checks and assigns addresses for a board file. The returned
    /// board has every physical address filled in.
    pub fn load(board_file: &Path) -> Result<Board, Errors> {
        let file = board_file.display().to_string();
        let text = std::fs::read_to_string(board_file)
            .map_err(|e| Errors::one(Error::new(&file, "", format!("cannot read: {e}"))))?;
        load_str(&file, &text)
    }

    /// Like [`load`] on text already in memory; `file` only names it in errors.
    pub fn load_str(file: &str, text: &str) -> Result<Board, Errors> {
        let mut board = crate::parse::parse(file, text)?;
        let mut errors = Errors::new();
        crate::check::check(&board, &mut errors);
        crate::cockpit::check(&board, &mut errors);
        if errors.is_empty() {
            // Placement is only meaningful on a structurally sound plan.
            crate::assign::assign(&mut board, &mut errors);
        }
        if errors.is_empty() {
            crate::check::check_placement(&board, &mut errors);
        }
        errors.into_result(board)
    }

    /// Rust source defining `pub static PLAN: tessera_boards::Plan`.
    pub fn emit(board: &Board) -> String {
        crate::emit::emit(board)
    }

    /// Human summary of a loaded board (VMs, cores, IPA -> PA of each region).
    pub fn summary(board: &Board) -> String {
        crate::summary::summary(board)
    }

    /// Build-script entry point: load `board_file` and write the generated
    /// tables to `out_rs`. The error text is ready to print as is.
    pub fn generate(board_file: &Path, out_rs: &Path) -> Result<(), Errors> {
        let board = load(board_file)?;
        let src = emit(&board);
        // Rewriting an identical file would needlessly rebuild the hypervisor.
        if std::fs::read_to_string(out_rs).ok().as_deref() == Some(src.as_str()) {
            return Ok(());
        }
        std::fs::write(out_rs, src).map_err(|e| {
            Errors::one(Error::new(
                &out_rs.display().to_string(),
                "",
                format!("cannot write generated tables: {e}"),
            ))
        })
    }
}
