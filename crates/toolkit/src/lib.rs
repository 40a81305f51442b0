//! Shared command-line plumbing of the ocfs2-mmp tools: exit codes, the
//! one-line error format, time formatting and terminal detection.

pub mod completions;
pub mod signals;

use std::io::IsTerminal;

/// Exit codes shared by the tools. `fsck.ocfs2-mmp` uses the fsck(8) bits;
/// `debugfs-mmp -R "mmp status"` uses e2mmpstatus' 0/1/2.
pub mod exit {
    /// Success; for `mmp status`: safe to mount.
    pub const OK: u8 = 0;
    /// `mmp status`: in use, fsck running, or an unknown marker.
    pub const MMP_IN_USE: u8 = 1;
    /// `mmp status`: could not tell.
    pub const MMP_UNKNOWN: u8 = 2;
    /// A request failed on a readable volume (bad path, damaged structure).
    pub const REQUEST_FAILED: u8 = 4;
    /// Operational error: the device cannot be opened or holds no OCFS2 volume.
    pub const OPERATIONAL: u8 = 8;
    /// Usage error.
    pub const USAGE: u8 = 16;
}

/// Print `prog: message` on stderr, with the whole cause chain on one line,
/// each thing said once: a cause that repeats what the line says is left
/// out, and one that begins with it (a device named by the context and
/// again by the error) takes its place.
pub fn print_error(prog: &str, err: &anyhow::Error) {
    eprintln!("{prog}: {}", error_line(err));
}

/// The one line [`print_error`] prints (without the program name).
pub fn error_line(err: &anyhow::Error) -> String {
    let mut line = err.to_string();
    for cause in err.chain().skip(1) {
        let c = cause.to_string();
        if c.starts_with(&line) {
            line = c;
        } else if !line.contains(&c) {
            line.push_str(": ");
            line.push_str(&c);
        }
    }
    line
}

/// Whether stderr is a terminal (for countdowns and progress).
pub fn stderr_is_tty() -> bool {
    std::io::stderr().is_terminal()
}

/// Whether stdout is a terminal (for progress counters).
pub fn stdout_is_tty() -> bool {
    std::io::stdout().is_terminal()
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// Seconds since the epoch as C's `ctime()` prints them in UTC
/// (`Wed Nov 25 11:48:43 2026`), without the newline.
pub fn ctime_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        y
    )
}

/// Seconds since the epoch as `debugfs.ocfs2 ls -l` prints them, in UTC
/// (`25-Nov-2026 11:48`, ` 1-Dec-2026 00:45`: the day is padded with a
/// space, as its `%2d` does).
pub fn ls_time_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{d:2}-{}-{y:4} {:02}:{:02}",
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Bytes read from a disk as text to print or put in JSON: UTF-8 as is,
/// control characters and bytes that are not UTF-8 escaped (`\xNN`).
pub fn text(bytes: &[u8]) -> String {
    ocfs2_format::bytes::printable(bytes)
}

/// A fixed-size on-disk string (a label, a stack name) up to its first
/// NUL, as [`text`].
pub fn cstr_text(bytes: &[u8]) -> String {
    let n = bytes.iter().position(|&c| c == 0).unwrap_or(bytes.len());
    text(&bytes[..n])
}

/// Says on stderr why and how long an MMP wait lasts, before it starts, and
/// counts the seconds down on a terminal; with a heartbeat, each update.
pub struct WaitReporter {
    prog: &'static str,
    /// Words put before the reason (e.g. "existing volume: ").
    prefix: &'static str,
    quiet: bool,
    tty: bool,
    beats: bool,
}

impl WaitReporter {
    /// `quiet` silences the countdown and the beats, never the announcement
    /// of a wait: a user must know why a tool sleeps.
    pub fn new(prog: &'static str, quiet: bool) -> Self {
        WaitReporter {
            prog,
            prefix: "",
            quiet,
            tty: stderr_is_tty(),
            beats: false,
        }
    }
    pub fn with_prefix(mut self, prefix: &'static str) -> Self {
        self.prefix = prefix;
        self
    }
    /// Also print every heartbeat update.
    pub fn with_beats(mut self) -> Self {
        self.beats = true;
        self
    }
}

impl ocfs2_mmp::Observer for WaitReporter {
    fn interrupted(&mut self) -> Option<i32> {
        signals::pending()
    }
    fn waiting(&mut self, secs: u32, why: &str) {
        eprintln!("{}: {}{why}; waiting {secs} s", self.prog, self.prefix);
    }
    fn tick(&mut self, left: u32) {
        if self.tty && !self.quiet {
            use std::io::Write;
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r{}: {left:>4} s left ", self.prog);
            if left == 0 {
                let _ = writeln!(e);
            }
            let _ = e.flush();
        }
    }
}

impl ocfs2_mmp::engine::BeatObserver for WaitReporter {
    fn beat(&mut self, seq: u32) {
        if self.beats && !self.quiet {
            eprintln!("{}: heartbeat: slot 0 = {seq:#010x}", self.prog);
        }
    }
}

/// Parse `--hb-window SECONDS` (clap value parser): 1 ..= 600.
pub fn parse_hb_window(s: &str) -> Result<u32, String> {
    use ocfs2_mmp::liveness::{DEFAULT_HB_WINDOW, HB_PERIOD_S, MAX_HB_WINDOW, MIN_HB_WINDOW};
    match s.parse::<u32>() {
        Ok(n) if (MIN_HB_WINDOW..=MAX_HB_WINDOW).contains(&n) => Ok(n),
        Ok(n) if n < MIN_HB_WINDOW => Err(format!(
            "a heartbeat window of {n} s proves nothing: o2hb writes every {HB_PERIOD_S} s, so give at least \
             {MIN_HB_WINDOW} s (default: the nodes' dead threshold, at least {DEFAULT_HB_WINDOW} s)"
        )),
        _ => Err(format!(
            "'{s}' is not a heartbeat window: give {MIN_HB_WINDOW} to {MAX_HB_WINDOW} seconds (default: the nodes' \
             dead threshold, at least {DEFAULT_HB_WINDOW} s)"
        )),
    }
}

/// Parse the command line; on `--help`/`--version` print and exit 0. A
/// usage error is one line on stderr, `prog: what (try --help)`, and with
/// `--json` among the arguments also one JSON object on stdout
/// ([`json_error`]); the exit code is `usage`.
pub fn parse_args<C: clap::Parser>(usage: u8) -> Result<C, std::process::ExitCode> {
    C::try_parse().map_err(|e| {
        if !e.use_stderr() {
            let _ = e.print();
            return std::process::ExitCode::from(0);
        }
        let prog = C::command().get_name().to_string();
        // clap's first paragraph, on one line ("the following required
        // arguments were not provided: <DEVICE>"); its tips and usage go.
        let rendered = e.to_string();
        let what = rendered
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ")
            .trim_start_matches("error: ")
            .to_string();
        eprintln!("{prog}: {what} (try --help)");
        if std::env::args_os().any(|a| a == "--json") {
            json_error(None, &what, usage);
        }
        std::process::ExitCode::from(usage)
    })
}

/// With `--json`, an outcome that ends a tool early (a usage error, a
/// refusal, a device that cannot be opened) is still one JSON object on
/// stdout: `{"device", "error", "exit_code"}`.
pub fn json_error(device: Option<&str>, error: &str, exit_code: u8) {
    println!(
        "{}",
        serde_json::json!({ "device": device, "error": error, "exit_code": exit_code })
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn ctime_matches_c() {
        assert_eq!(ctime_utc(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(ctime_utc(0x6b06_cb1b), "Wed Nov 25 11:48:43 2026");
    }

    #[test]
    fn ls_time_matches_debugfs_ocfs2() {
        assert_eq!(ls_time_utc(0x6b06_cb1b), "25-Nov-2026 11:48");
        // Its "%2d": a single-digit day is padded with a space.
        assert_eq!(ls_time_utc(1_796_085_900), " 1-Dec-2026 00:45");
        assert_eq!(ls_time_utc(0), " 1-Jan-1970 00:00");
    }
}

/// A size with an optional suffix (k, m, g, t: powers of 1024; b: bytes),
/// as mkfs.ocfs2 and tunefs.ocfs2 take it.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_lowercase() {
                'k' => 1 << 10,
                'm' => 1 << 20,
                'g' => 1 << 30,
                't' => 1 << 40,
                'b' => 1,
                _ => return Err(format!("'{s}': unknown size suffix '{c}' (k, m, g, t)")),
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    let n: u64 = num.parse().map_err(|_| format!("'{s}' is not a size"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{s}' is too large"))
}

/// `-J` options, as mkfs.ocfs2 and tunefs.ocfs2 take them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JournalOptions {
    /// `size=SIZE`, in bytes (at least 4 MiB).
    pub size: Option<u64>,
    /// `block64` / `block32` (`noblock32` / `noblock64`).
    pub block64: Option<bool>,
}

/// Parse `-J size=SIZE,block32|block64`.
pub fn parse_journal_options(s: &str) -> Result<JournalOptions, String> {
    let mut o = JournalOptions::default();
    for part in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
        match part {
            "block64" | "noblock32" => o.block64 = Some(true),
            "block32" | "noblock64" => o.block64 = Some(false),
            _ => {
                let v = part.strip_prefix("size=").ok_or_else(|| {
                    format!("journal option '{part}': use size=SIZE, block32 or block64")
                })?;
                let sz = parse_size(v)?;
                if sz < 4 << 20 {
                    return Err(format!("journal size {v}: must be at least 4 MiB"));
                }
                o.size = Some(sz);
            }
        }
    }
    Ok(o)
}
