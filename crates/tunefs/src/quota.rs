//! `--fs-features=[no]usrquota,[no]grpquota`, as tunefs.ocfs2 turns quotas:
//! on, the global file and every slot's local file are made and written
//! with the usage counted from the inodes (`sysfile::install_quota`), and
//! the superblock gets the bit last; off, every superblock copy loses the
//! bit first, then the files go (`sysfile::remove_quota`). Either way a
//! crash leaves files of a type whose bit is off, which nothing reads and a
//! rerun of either takes up: on reuses them, off removes them.

use anyhow::{Context, Result};
use ocfs2_format::ondisk::SuperBlock;
use ocfs2_format::quota::QuotaType;
use ocfs2_format::Volume;

/// The quota feature names and their types.
pub fn by_name(name: &str) -> Option<QuotaType> {
    match name {
        "usrquota" => Some(QuotaType::User),
        "grpquota" => Some(QuotaType::Group),
        _ => None,
    }
}

/// tunefs.ocfs2's name of a type.
pub fn name(t: QuotaType) -> &'static str {
    match t {
        QuotaType::User => "usrquota",
        QuotaType::Group => "grpquota",
    }
}

/// The types that change: turned on while off; turned off while on, or
/// off with files a stopped run left.
pub fn changes(vol: &Volume, asked: &[(QuotaType, bool)]) -> Result<Vec<(QuotaType, bool)>> {
    let mut out = Vec::new();
    for t in [QuotaType::User, QuotaType::Group] {
        let Some(&(_, want)) = asked.iter().rev().find(|a| a.0 == t) else {
            continue;
        };
        let on = vol.features().ro_compat & t.feature() != 0;
        let strays = !on && !ocfs2_format::sysfile::quota_files(vol, t)?.is_empty();
        if want != on || (!want && strays) {
            out.push((t, want));
        }
    }
    Ok(out)
}

/// Set or clear the types' bits in `sb`.
pub fn apply(sb: &mut SuperBlock, changes: &[(QuotaType, bool)]) {
    for &(t, on) in changes {
        let v = sb.s_feature_ro_compat.get();
        sb.s_feature_ro_compat.set(if on {
            v | t.feature()
        } else {
            v & !t.feature()
        });
    }
}

/// Make the changes but the final superblock write: the types turned off
/// lose their bit in every copy first (from the volume's superblock as it
/// is), then their files; the types turned on get theirs.
pub fn write(
    vol: &Volume,
    changes: &[(QuotaType, bool)],
    verify: &dyn Fn() -> Result<()>,
) -> Result<()> {
    let v = crate::format_verify(verify);
    let off: Vec<_> = changes.iter().filter(|c| !c.1).copied().collect();
    if !off.is_empty() {
        let mut sb = *vol.sb();
        apply(&mut sb, &off);
        verify()?;
        vol.write_super_everywhere(&sb)
            .context("turning the quota bits off")?;
    }
    for &(t, on) in changes {
        if on {
            ocfs2_format::sysfile::install_quota(vol, t, &v)
                .with_context(|| format!("making the {} files", name(t)))?;
        } else {
            ocfs2_format::sysfile::remove_quota(vol, t, &v)
                .with_context(|| format!("removing the {} files", name(t)))?;
        }
    }
    Ok(())
}
