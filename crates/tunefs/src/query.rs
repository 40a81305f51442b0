//! `-Q`: print a volume's attributes in a format string, as tunefs.ocfs2
//! prints them.

use anyhow::{bail, Result};
use ocfs2_format::features::incompat;
use ocfs2_format::Volume;

pub(crate) fn query(vol: &Volume, fmt: &str) -> Result<String> {
    let sb = vol.sb();
    let f = vol.features();
    let names = f.names();
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next() {
                Some('B') => out.push_str(&vol.block_size().to_string()),
                Some('T') => out.push_str(&vol.cluster_size().to_string()),
                Some('N') => out.push_str(&vol.max_slots().to_string()),
                Some('R') => out.push_str(&vol.root_blkno().to_string()),
                Some('Y') => out.push_str(&vol.system_dir_blkno().to_string()),
                Some('P') => out.push_str(&sb.s_first_cluster_group.get().to_string()),
                Some('V') => out.push_str(&String::from_utf8_lossy(&vol.label())),
                Some('U') => out.push_str(&vol.uuid_hex()),
                Some('M') => out.push_str(&names.compat.join(" ")),
                Some('H') => out.push_str(&names.incompat.join(" ")),
                Some('O') => out.push_str(&names.ro_compat.join(" ")),
                Some('I') => out.push_str(&sb.s_mmp_update_interval.get().to_string()),
                Some('A') => out.push_str(if f.has_incompat(incompat::MMP) {
                    "enabled"
                } else {
                    "disabled"
                }),
                Some('S') => out.push_str(vol.slot_map_format().name()),
                Some('%') => out.push('%'),
                Some(other) => bail!("unknown query specifier %{other}"),
                None => bail!("query format ends in %"),
            },
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('\\') => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    Ok(out)
}
