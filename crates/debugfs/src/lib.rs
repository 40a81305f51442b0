//! `debugfs-mmp`: read-only inspection of OCFS2 volumes and their MMP state.
//!
//! `debugfs-mmp [--json] -R "REQUEST" [-R ...] DEVICE`, or requests from a
//! file (`-f FILE`) or standard input, one per line, each run as it is
//! read (a prompt on a terminal); a bad one prints its error and the
//! session goes on; `quit` ends it.

mod blocks;
mod files;
mod logdump;
mod requests;
mod xattrs;

use clap::Parser;
use ocfs2_format::{OpenMode, Volume};
use ocfs2_toolkit::exit;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

pub const PROG: &str = "debugfs-mmp";

/// Inspect an OCFS2 volume and its multiple mount protection state.
#[derive(Debug, Parser)]
#[command(name = PROG, version, about, long_about = None)]
pub struct Cli {
    /// Run REQUEST and exit (may be given several times)
    ///
    /// Requests: stats, slotmap, "mmp status [-i]", "mmp heartbeat",
    /// "mmp set", hb, "ls [-l] PATH", "stat PATH", "cat PATH",
    /// "dump [-p] PATH HOSTFILE", "rdump PATH HOSTDIR", "logdump [SLOT]",
    /// "findpath INODE", "ncheck INODE...", "icheck BLOCK...", "frag PATH",
    /// help, quit ("help" describes each). PATH starts with / (root
    /// directory), // (system directory) or is <BLKNO>.
    #[arg(short = 'R', long = "request", value_name = "REQUEST")]
    pub requests: Vec<String>,

    /// Read requests from FILE, one per line ("-" for standard input)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Print each request's result as one JSON object per line
    #[arg(long)]
    pub json: bool,

    /// Heartbeat window of "mmp status" and "mmp heartbeat" on clustered
    /// volumes, in seconds (5 to 600; default: the nodes' dead threshold,
    /// at least 62 s)
    #[arg(long = "hb-window", value_name = "SECONDS", value_parser = ocfs2_toolkit::parse_hb_window)]
    pub hb_window: Option<u32>,

    /// Open the device for writing (needed by "mmp heartbeat" and "mmp set")
    #[arg(short = 'w', long = "write")]
    pub write: bool,

    /// The volume: a path, LABEL=label or UUID=uuid
    #[arg(value_name = "DEVICE")]
    pub device: String,
}

/// Result of one request: text (and bytes, for `cat`) for a person, JSON
/// for `--json` (null: nothing to print).
pub struct Outcome {
    pub text: String,
    pub raw: Vec<u8>,
    /// What the request passed over (unreadable parts of a damaged
    /// volume): each printed on standard error naming the device.
    pub warnings: Vec<String>,
    pub json: serde_json::Value,
    pub exit: u8,
}

impl Outcome {
    /// A request's answer that passed over parts it could not read: each
    /// named on standard error, and exit 4 when there were any.
    pub fn passing_over(text: String, json: serde_json::Value, unreadable: &[String]) -> Outcome {
        Outcome {
            text,
            raw: Vec::new(),
            warnings: unreadable
                .iter()
                .map(|u| format!("passed over {u}"))
                .collect(),
            json,
            exit: if unreadable.is_empty() {
                exit::OK
            } else {
                exit::REQUEST_FAILED
            },
        }
    }
}

pub fn main() -> ExitCode {
    let cli: Cli = match ocfs2_toolkit::parse_args(exit::USAGE) {
        Ok(c) => c,
        Err(code) => return code,
    };
    ExitCode::from(run(&cli))
}

/// Where request lines come from after the `-R`s.
enum Lines {
    None,
    File(std::io::BufReader<std::fs::File>),
    Stdin,
}

/// The session: one volume, requests run as they come, the worst exit
/// code kept.
struct Session<'a> {
    cli: &'a Cli,
    vol: Volume,
    worst: u8,
    ran: usize,
}

impl Session<'_> {
    /// Run one request and print what it gives. Returns false when the
    /// session must end (standard output is gone).
    fn run(&mut self, req: &requests::Request) -> bool {
        self.ran += 1;
        if req.writes() && !self.cli.write {
            eprintln!(
                "{PROG}: request \"{}\" writes to the device: add -w",
                req.name()
            );
            self.worst = self.worst.max(exit::USAGE);
            return true;
        }
        let code = match requests::execute(&self.vol, &self.cli.device, req, self.cli.json) {
            Ok(out) => {
                for w in &out.warnings {
                    eprintln!("{PROG}: {}: {}: {w}", self.cli.device, req.name());
                }
                let mut lock = std::io::stdout().lock();
                let written = if self.cli.json {
                    if out.json.is_null() {
                        Ok(())
                    } else {
                        writeln!(lock, "{}", out.json)
                    }
                } else {
                    write!(lock, "{}", out.text).and_then(|()| lock.write_all(&out.raw))
                };
                if let Err(e) = written.and_then(|()| lock.flush()) {
                    if e.kind() != std::io::ErrorKind::BrokenPipe {
                        eprintln!("{PROG}: write error: {e}");
                        self.worst = self.worst.max(exit::OPERATIONAL);
                    }
                    return false;
                }
                out.exit
            }
            Err(e) => {
                let e = e.context(format!("{}: {}", self.cli.device, req.name()));
                ocfs2_toolkit::print_error(PROG, &e);
                if matches!(req, requests::Request::MmpStatus { .. }) {
                    exit::MMP_UNKNOWN
                } else {
                    exit::REQUEST_FAILED
                }
            }
        };
        self.worst = self.worst.max(code);
        true
    }
}

pub fn run(cli: &Cli) -> u8 {
    // -R requests are the command line's: a bad one is a usage error
    // before anything runs.
    let mut given = Vec::new();
    for r in &cli.requests {
        match requests::parse(r) {
            Ok(p) => given.push(p.with_default_hb_window(cli.hb_window)),
            Err(e) => {
                eprintln!("{PROG}: {e}");
                return exit::USAGE;
            }
        }
    }
    let mut lines = match &cli.file {
        Some(f) if f.as_os_str() == "-" => Lines::Stdin,
        Some(f) => match std::fs::File::open(f) {
            Ok(file) => Lines::File(std::io::BufReader::new(file)),
            Err(e) => {
                eprintln!("{PROG}: cannot read requests from {}: {e}", f.display());
                return exit::USAGE;
            }
        },
        None if given.is_empty() => Lines::Stdin,
        None => Lines::None,
    };
    if let Some(r) = given.iter().find(|r| r.writes()) {
        if !cli.write {
            eprintln!(
                "{PROG}: request \"{}\" writes to the device: add -w",
                r.name()
            );
            return exit::USAGE;
        }
    }
    // Scripts that ask only `mmp status` expect e2mmpstatus' codes, where
    // "could not open" is "could not tell" (2).
    let status_only = matches!(lines, Lines::None)
        && given
            .iter()
            .all(|r| matches!(r, requests::Request::MmpStatus { .. }));
    if cli.write {
        ocfs2_toolkit::signals::install();
    }
    let vol = match open(&cli.device, cli.write) {
        Ok(v) => v,
        Err(e) => {
            ocfs2_toolkit::print_error(PROG, &e);
            let code = if status_only {
                exit::MMP_UNKNOWN
            } else {
                exit::OPERATIONAL
            };
            if cli.json {
                ocfs2_toolkit::json_error(Some(&cli.device), &ocfs2_toolkit::error_line(&e), code);
            }
            return code;
        }
    };
    if let Some(w) = vol.device().direct_warning() {
        eprintln!("{PROG}: warning: {w}");
    }
    let mut session = Session {
        cli,
        vol,
        worst: exit::OK,
        ran: 0,
    };
    for req in &given {
        if matches!(req, requests::Request::Quit) {
            return session.worst;
        }
        if !session.run(req) {
            return session.worst;
        }
    }
    // Lines: each request runs as it is read; a bad one prints its error
    // and the session goes on; `quit` ends it. On a terminal, a prompt.
    let prompt = matches!(lines, Lines::Stdin) && std::io::stdin().is_terminal();
    let mut quit = false;
    loop {
        if prompt {
            print!("{PROG}: ");
            let _ = std::io::stdout().flush();
        }
        let mut line = String::new();
        let got = match &mut lines {
            Lines::None => break,
            Lines::File(r) => r.read_line(&mut line),
            Lines::Stdin => std::io::stdin().lock().read_line(&mut line),
        };
        match got {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                eprintln!("{PROG}: reading requests: {e}");
                session.worst = session.worst.max(exit::USAGE);
                break;
            }
        }
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        match requests::parse(t) {
            Ok(requests::Request::Quit) => {
                quit = true;
                break;
            }
            Ok(req) => {
                if !session.run(&req.with_default_hb_window(cli.hb_window)) {
                    break;
                }
            }
            Err(e) => {
                session.ran += 1;
                eprintln!("{PROG}: {e}");
                session.worst = session.worst.max(exit::USAGE);
            }
        }
    }
    if prompt && !quit {
        println!();
    }
    if session.ran == 0 && !quit {
        eprintln!("{PROG}: no request given (use -R REQUEST, -f FILE or standard input)");
        return exit::USAGE;
    }
    session.worst
}

fn open(device: &str, write: bool) -> anyhow::Result<Volume> {
    use ocfs2_format::Error as E;
    match ocfs2_format::open_volume(
        device,
        OpenMode {
            write,
            exclusive: false,
        },
    ) {
        Ok((_, vol)) => Ok(vol),
        // These already name the path.
        Err(
            e @ (E::Open { .. } | E::IsDirectory { .. } | E::NotADevice { .. } | E::NotFound(_)),
        ) => Err(e.into()),
        Err(e) => Err(anyhow::Error::new(e).context(device.to_string())),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_valid() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
