//! Errors that name the board file, the entry and the reason, collected so a
//! single run reports every problem.

use std::fmt;
use std::prelude::rust_2021::*;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub file: String,
    /// The offending entry, e.g. `vm "ivi" memory[0]`; empty for file-level
    /// problems (unreadable file, TOML syntax).
    pub entry: String,
    pub reason: String,
}

impl Error {
    pub fn new(file: &str, entry: &str, reason: impl Into<String>) -> Self {
        Error {
            file: file.to_string(),
            entry: entry.to_string(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entry.is_empty() {
            write!(f, "{}: {}", self.file, self.reason)
        } else {
            write!(f, "{}: {}: {}", self.file, self.entry, self.reason)
        }
    }
}

/// One or more errors, displayed one per line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Errors(pub Vec<Error>);

impl Errors {
    pub fn new() -> Self {
        Errors(Vec::new())
    }

    pub fn one(e: Error) -> Self {
        Errors(vec![e])
    }

    pub fn push(&mut self, e: Error) {
        self.0.push(e);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Error> {
        self.0.iter()
    }

    pub(crate) fn into_result<T>(self, value: T) -> Result<T, Errors> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}

/// Collects errors against one file and entry prefix.
pub(crate) struct Sink<'a> {
    pub file: &'a str,
    pub errors: &'a mut Errors,
}

impl Sink<'_> {
    pub fn err(&mut self, entry: &str, reason: impl Into<String>) {
        self.errors.push(Error::new(self.file, entry, reason));
    }
}
