//! `check-board FILE...`: checks board files and prints each plan's summary,
//! or every error and exit status 1.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: check-board FILE...");
        return ExitCode::from(2);
    }
    let mut ok = true;
    for f in &files {
        match tessera_boards::load(Path::new(f)) {
            Ok(board) => print!("{}", tessera_boards::summary(&board)),
            Err(errors) => {
                eprintln!("{errors}");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
