//! Write the bash, zsh and fish completions of every tool under DIR, in
//! the layout Debian installs them (`DIR/share/bash-completion/...`):
//! `cargo run --release --example completions -- DIR` (make install,
//! make deb).

use ocfs2_toolkit::completions::{script, Shell};
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: completions DIR");
        return ExitCode::from(16);
    };
    for (tool, _, cmd) in ocfs2_mmp_tools::tools() {
        for sh in Shell::ALL {
            let path = Path::new(&dir).join(sh.install_path(tool));
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&path, script(&cmd, tool, sh)));
            if let Err(e) = written {
                eprintln!("completions: {}: {e}", path.display());
                return ExitCode::from(8);
            }
        }
    }
    ExitCode::SUCCESS
}
