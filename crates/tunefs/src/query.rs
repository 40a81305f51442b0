//! `-Q`: print a volume's attributes in a format string, as tunefs.ocfs2
//! prints them.

use anyhow::{bail, Result};
use ocfs2_format::features::incompat;
use ocfs2_format::Volume;

/// Whether `fmt` holds only specifiers `-Q` knows (checked before the
/// device is opened: a bad format is a usage error).
pub(crate) fn check(fmt: &str) -> std::result::Result<(), String> {
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some('B' | 'T' | 'N' | 'R' | 'Y' | 'P' | 'V' | 'U' | 'M' | 'H' | 'O' | 'I' | 'A' | 'S' | '%') => {}
                Some(other) => {
                    return Err(format!(
                        "-Q: unknown specifier %{other} (known: %B %T %N %R %Y %P %V %U %M %H %O %I %A %S %%)"
                    ))
                }
                None => return Err("-Q: the format ends in a lone %".into()),
            }
        }
    }
    Ok(())
}

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
                Some('V') => out.push_str(&ocfs2_toolkit::cstr_text(&vol.label())),
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

/// `-Q FORMAT --json`: what the format printed, and the attributes it can
/// name, as one object.
pub(crate) fn json(vol: &Volume, device: &str, fmt: &str, out: &str) -> serde_json::Value {
    let names = vol.features().names();
    serde_json::json!({
        "device": device,
        "format": fmt,
        "output": out,
        "block_size": vol.block_size(),
        "cluster_size": vol.cluster_size(),
        "node_slots": vol.max_slots(),
        "root_blkno": vol.root_blkno(),
        "system_dir_blkno": vol.system_dir_blkno(),
        "first_cluster_group": vol.sb().s_first_cluster_group.get(),
        "label": ocfs2_toolkit::cstr_text(&vol.label()),
        "uuid": vol.uuid_hex(),
        "features": { "compat": names.compat, "incompat": names.incompat, "ro_compat": names.ro_compat },
        "mmp": vol.features().has_incompat(incompat::MMP),
        "mmp_update_interval": vol.sb().s_mmp_update_interval.get(),
        "slot_map": vol.slot_map_format().name(),
        "exit_code": 0,
    })
}
