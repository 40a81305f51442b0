//! `debugfs-mmp`: read-only inspection of OCFS2 volumes and their MMP state.
//!
//! `debugfs-mmp [--json] -R "REQUEST" [-R ...] DEVICE`, or requests from a
//! file (`-f FILE`) or standard input, one per line.

mod requests;

use anyhow::Context;
use clap::Parser;
use ocfs2_format::{OpenMode, Volume};
use ocfs2_toolkit::exit;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

pub const PROG: &str = "debugfs-mmp";

/// Inspect an OCFS2 volume and its multiple mount protection state.
#[derive(Debug, Parser)]
#[command(name = PROG, version, about, long_about = None)]
pub struct Cli {
    /// Run REQUEST and exit (may be given several times)
    ///
    /// Requests: stats, slotmap, "mmp status [-i]", "ls [-l] PATH",
    /// "stat PATH", help. PATH starts with / (root directory), // (system
    /// directory) or is <BLKNO>.
    #[arg(short = 'R', long = "request", value_name = "REQUEST")]
    pub requests: Vec<String>,

    /// Read requests from FILE, one per line ("-" for standard input)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Print each request's result as one JSON object per line
    #[arg(long)]
    pub json: bool,

    /// Heartbeat window of "mmp status" and "mmp heartbeat" on clustered
    /// volumes, in seconds (1..=600; default: the nodes' dead threshold,
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

/// Result of one request.
pub struct Outcome {
    pub text: String,
    pub json: serde_json::Value,
    pub exit: u8,
}

pub fn main() -> ExitCode {
    let cli: Cli = match ocfs2_toolkit::parse_args(exit::USAGE) {
        Ok(c) => c,
        Err(code) => return code,
    };
    ExitCode::from(run(&cli))
}

/// Gather the requests: `-R`s, then `-f FILE`, else standard input.
fn gather_requests(cli: &Cli) -> anyhow::Result<Vec<String>> {
    let mut reqs = cli.requests.clone();
    let from_lines = |r: &mut dyn BufRead| -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        for line in r.lines() {
            let line = line?;
            let t = line.trim();
            if !t.is_empty() && !t.starts_with('#') {
                out.push(t.to_string());
            }
        }
        Ok(out)
    };
    match &cli.file {
        Some(f) if f.as_os_str() == "-" => reqs.extend(from_lines(&mut std::io::stdin().lock())?),
        Some(f) => {
            let file = std::fs::File::open(f)
                .with_context(|| format!("cannot read requests from {}", f.display()))?;
            reqs.extend(from_lines(&mut std::io::BufReader::new(file))?);
        }
        None if reqs.is_empty() => reqs.extend(from_lines(&mut std::io::stdin().lock())?),
        None => {}
    }
    Ok(reqs)
}

pub fn run(cli: &Cli) -> u8 {
    let reqs = match gather_requests(cli) {
        Ok(r) => r,
        Err(e) => {
            ocfs2_toolkit::print_error(PROG, &e);
            return exit::USAGE;
        }
    };
    let parsed: Vec<requests::Request> = match reqs
        .iter()
        .map(|r| requests::parse(r))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(p) => p
            .into_iter()
            .map(|r| r.with_default_hb_window(cli.hb_window))
            .collect(),
        Err(e) => {
            eprintln!("{PROG}: {e}");
            return exit::USAGE;
        }
    };
    if parsed.is_empty() {
        eprintln!("{PROG}: no request given (use -R REQUEST, -f FILE or standard input)");
        return exit::USAGE;
    }
    // Scripts that ask only `mmp status` expect e2mmpstatus' codes, where
    // "could not open" is "could not tell" (2).
    let status_only = parsed
        .iter()
        .all(|r| matches!(r, requests::Request::MmpStatus { .. }));
    if let Some(r) = parsed.iter().find(|r| r.writes()) {
        if !cli.write {
            eprintln!(
                "{PROG}: request \"{}\" writes to the device: add -w",
                r.name()
            );
            return exit::USAGE;
        }
    }
    if cli.write {
        ocfs2_toolkit::signals::install();
    }
    let vol = match open(&cli.device, cli.write) {
        Ok(v) => v,
        Err(e) => {
            ocfs2_toolkit::print_error(PROG, &e);
            return if status_only {
                exit::MMP_UNKNOWN
            } else {
                exit::OPERATIONAL
            };
        }
    };
    if let Some(w) = vol.device().direct_warning() {
        eprintln!("{PROG}: warning: {w}");
    }
    let mut worst = exit::OK;
    let stdout = std::io::stdout();
    for req in &parsed {
        let res = requests::execute(&vol, &cli.device, req, cli.json);
        let code = match res {
            Ok(out) => {
                let mut lock = stdout.lock();
                let written = if cli.json {
                    writeln!(lock, "{}", out.json)
                } else {
                    write!(lock, "{}", out.text)
                };
                if let Err(e) = written.and_then(|()| lock.flush()) {
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        return worst;
                    }
                    eprintln!("{PROG}: write error: {e}");
                    return exit::OPERATIONAL;
                }
                out.exit
            }
            Err(e) => {
                let e = e.context(format!("{}: {}", cli.device, req.name()));
                ocfs2_toolkit::print_error(PROG, &e);
                if matches!(req, requests::Request::MmpStatus { .. }) {
                    exit::MMP_UNKNOWN
                } else {
                    exit::REQUEST_FAILED
                }
            }
        };
        worst = worst.max(code);
    }
    worst
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
