//! Who decides each repair: `-y` (yes to all), `-p` (yes to what is safe
//! without a person), `-n` (no), or, with none of these, the person at the
//! terminal, asked one question per repair (y, n, or a: yes to all), as
//! e2fsck asks. Without a terminal there is nobody to ask: the run is refused
//! before it starts.

use crate::problems::Repair;
use std::io::{BufRead, IsTerminal, Write};

/// How repairs are decided.
#[derive(Debug)]
pub enum Answers {
    No,
    Yes,
    Preen,
    /// Asked on the terminal; `all` once the answer was "a".
    Ask {
        all: bool,
    },
}

impl Answers {
    /// From the options; `None` when a person would have to be asked but
    /// standard input is not a terminal.
    pub fn from_options(no: bool, yes: bool, preen: bool) -> Option<Answers> {
        Some(match (no, yes, preen) {
            (true, _, _) => Answers::No,
            (_, true, _) => Answers::Yes,
            (_, _, true) => Answers::Preen,
            _ if std::io::stdin().is_terminal() => Answers::Ask { all: false },
            _ => return None,
        })
    }

    /// Whether the run may write at all.
    pub fn writes(&self) -> bool {
        !matches!(self, Answers::No)
    }

    /// Decide one repair of class `repair`, described by `question` (a
    /// sentence without its question mark).
    pub fn approve(&mut self, repair: Repair, question: &str) -> bool {
        match self {
            Answers::No => false,
            Answers::Yes => repair != Repair::No,
            Answers::Preen => repair == Repair::Safe,
            Answers::Ask { all: true } => repair != Repair::No,
            Answers::Ask { all } => {
                if repair == Repair::No {
                    return false;
                }
                eprint!("{question}? <y> (y/n/a: yes to all) ");
                let _ = std::io::stderr().flush();
                let mut line = String::new();
                if std::io::stdin().lock().read_line(&mut line).unwrap_or(0) == 0 {
                    eprintln!("n (end of input)");
                    return false;
                }
                match line.trim() {
                    "" | "y" | "Y" | "yes" => true,
                    "a" | "A" | "all" => {
                        *all = true;
                        true
                    }
                    _ => false,
                }
            }
        }
    }
}
