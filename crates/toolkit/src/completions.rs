//! Shell completions written from a tool's clap definition (the one its
//! binary parses), for bash, zsh and fish: every long and short option,
//! the values an option takes when clap lists them, and files (devices,
//! images) for operands and path-valued options. clap_complete does this
//! upstream; the build here has no network, so this small writer covers
//! what our flat (subcommand-free) command lines need.

use clap::{Arg, ArgAction, Command, ValueHint};
use std::fmt::Write as _;

/// The shells we write for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    pub const ALL: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

    pub fn name(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
        }
    }

    /// Where Debian keeps a completion for `tool` (relative to `/usr`).
    pub fn install_path(self, tool: &str) -> String {
        match self {
            Shell::Bash => format!("share/bash-completion/completions/{tool}"),
            Shell::Zsh => format!("share/zsh/vendor-completions/_{tool}"),
            Shell::Fish => format!("share/fish/vendor_completions.d/{tool}.fish"),
        }
    }
}

/// One option as the completions see it.
struct Opt {
    long: Option<String>,
    short: Option<char>,
    /// Other short names clap shows (fsck's `-a` for `-p`).
    aliases: Vec<char>,
    takes_value: bool,
    values: Vec<String>,
    files: bool,
    help: String,
}

fn options(cmd: &Command) -> Vec<Opt> {
    let mut out = Vec::new();
    for a in cmd
        .get_arguments()
        .filter(|a| !a.is_positional() && !a.is_hide_set())
    {
        out.push(opt(a));
    }
    for (long, short, help) in [
        ("help", 'h', "Print help"),
        ("version", 'V', "Print version"),
    ] {
        let taken = out
            .iter()
            .any(|o| o.long.as_deref() == Some(long) || o.short == Some(short));
        let wanted = long == "help" || cmd.get_version().is_some();
        if !taken && wanted && !cmd.is_disable_help_flag_set() {
            out.push(Opt {
                long: Some(long.into()),
                short: Some(short),
                aliases: Vec::new(),
                takes_value: false,
                values: Vec::new(),
                files: false,
                help: help.into(),
            });
        }
    }
    out
}

fn opt(a: &Arg) -> Opt {
    let takes_value = matches!(a.get_action(), ArgAction::Set | ArgAction::Append);
    let values = a
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_string())
        .collect();
    let files = takes_value
        && matches!(
            a.get_value_hint(),
            ValueHint::FilePath | ValueHint::AnyPath | ValueHint::DirPath
        );
    let help = a
        .get_help()
        .map(|h| h.to_string())
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    Opt {
        long: a.get_long().map(str::to_string),
        short: a.get_short(),
        aliases: a.get_visible_short_aliases().unwrap_or_default(),
        takes_value,
        values,
        files,
        help,
    }
}

/// The completion script for `tool` (the installed name) in `shell`.
pub fn script(cmd: &Command, tool: &str, shell: Shell) -> String {
    let opts = options(cmd);
    match shell {
        Shell::Bash => bash(&opts, tool),
        Shell::Zsh => zsh(&opts, tool),
        Shell::Fish => fish(&opts, tool),
    }
}

fn func_name(tool: &str) -> String {
    tool.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn bash(opts: &[Opt], tool: &str) -> String {
    let mut words = Vec::new();
    for o in opts {
        if let Some(l) = &o.long {
            words.push(format!("--{l}{}", if o.takes_value { "=" } else { "" }));
        }
        for s in o.short.iter().chain(&o.aliases) {
            words.push(format!("-{s}"));
        }
    }
    let f = func_name(tool);
    let mut t = format!(
        "# bash completion for {tool}, written from its clap definition\n\
         _{f}() {{\n\
         \tlocal cur prev\n\
         \tcur=\"${{COMP_WORDS[COMP_CWORD]}}\"\n\
         \tprev=\"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         \tcase \"$prev\" in\n"
    );
    for o in opts.iter().filter(|o| o.takes_value) {
        let mut names: Vec<String> = o.long.iter().map(|l| format!("--{l}")).collect();
        names.extend(o.short.iter().chain(&o.aliases).map(|s| format!("-{s}")));
        let action = if !o.values.is_empty() {
            format!(
                "COMPREPLY=($(compgen -W \"{}\" -- \"$cur\"))",
                o.values.join(" ")
            )
        } else if o.files {
            "COMPREPLY=($(compgen -f -- \"$cur\"))".to_string()
        } else {
            "COMPREPLY=()".to_string()
        };
        let _ = writeln!(t, "\t{})\n\t\t{action}\n\t\treturn ;;", names.join("|"));
    }
    let _ = write!(
        t,
        "\tesac\n\
         \tcase \"$cur\" in\n\
         \t--*=*)\n\
         \t\tCOMPREPLY=($(compgen -f -- \"${{cur#*=}}\"))\n\
         \t\treturn ;;\n\
         \t-*)\n\
         \t\tCOMPREPLY=($(compgen -W \"{}\" -- \"$cur\"))\n\
         \t\t[ \"${{COMPREPLY[0]}}\" != \"${{COMPREPLY[0]%=}}\" ] && compopt -o nospace 2>/dev/null\n\
         \t\treturn ;;\n\
         \tesac\n\
         \tCOMPREPLY=($(compgen -f -- \"$cur\"))\n\
         }}\n\
         complete -o filenames -F _{f} {tool}\n",
        words.join(" ")
    );
    t
}

/// Text for a zsh `_arguments` description: no brackets, quotes or colons.
fn zsh_text(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '[' | ']' | '\'' | ':' | '\\'))
        .collect()
}

fn zsh(opts: &[Opt], tool: &str) -> String {
    let mut t = format!(
        "#compdef {tool}\n# zsh completion for {tool}, written from its clap definition\n_arguments -s -S \\\n"
    );
    for o in opts {
        let help = zsh_text(&o.help);
        let value = if !o.takes_value {
            String::new()
        } else if !o.values.is_empty() {
            format!(":value:({})", o.values.join(" "))
        } else if o.files {
            ":file:_files".to_string()
        } else {
            ":value: ".to_string()
        };
        let eq = if o.takes_value { "=" } else { "" };
        if let Some(l) = &o.long {
            let _ = writeln!(t, "  '--{l}{eq}[{help}]{value}' \\");
        }
        for s in o.short.iter().chain(&o.aliases) {
            let _ = writeln!(t, "  '-{s}[{help}]{value}' \\");
        }
    }
    t.push_str("  '*:device or image:_files'\n");
    t
}

fn fish(opts: &[Opt], tool: &str) -> String {
    let mut t = format!("# fish completion for {tool}, written from its clap definition\n");
    for o in opts {
        let mut line = format!("complete -c {tool}");
        if let Some(l) = &o.long {
            let _ = write!(line, " -l {l}");
        }
        for s in o.short.iter().chain(&o.aliases) {
            let _ = write!(line, " -s {s}");
        }
        if o.takes_value {
            line.push_str(" -r");
            if !o.values.is_empty() {
                let _ = write!(line, " -f -a '{}'", o.values.join(" "));
            } else if !o.files {
                line.push_str(" -f");
            }
        }
        if !o.help.is_empty() {
            let _ = write!(line, " -d '{}'", o.help.replace('\'', ""));
        }
        t.push_str(&line);
        t.push('\n');
    }
    t
}

/// Every long option (`--name`) the command line accepts, help and version
/// included.
pub fn long_options(cmd: &Command) -> Vec<String> {
    options(cmd).into_iter().filter_map(|o| o.long).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> Command {
        Command::new("t")
            .version("1")
            .arg(
                Arg::new("yes")
                    .short('y')
                    .visible_short_alias('a')
                    .long("yes")
                    .action(ArgAction::SetTrue),
            )
            .arg(
                Arg::new("mode")
                    .long("mode")
                    .value_parser(["local", "cluster"])
                    .action(ArgAction::Set),
            )
            .arg(Arg::new("dev"))
    }

    #[test]
    fn every_option_is_in_every_script() {
        for sh in Shell::ALL {
            let s = script(&cmd(), "t.x", sh);
            for w in ["yes", "mode", "help", "version"] {
                assert!(s.contains(w), "{}: {w}\n{s}", sh.name());
            }
            assert!(s.contains("local") && s.contains("cluster"), "{s}");
            let alias = if sh == Shell::Fish { "-s a" } else { "'-a[" };
            let alias = if sh == Shell::Bash { " -a " } else { alias };
            assert!(s.contains(alias), "{}: the visible alias\n{s}", sh.name());
        }
        assert_eq!(long_options(&cmd()), ["yes", "mode", "help", "version"]);
    }
}
