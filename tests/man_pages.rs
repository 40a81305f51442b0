//! Issue 15, item 2: each man page's OPTIONS section lists every option its
//! tool accepts (the clap definition the binary parses), and every option
//! it lists is accepted.

use std::collections::BTreeSet;

/// The option tags of a man page's OPTIONS section (the line after each
/// `.TP`), as text: font escapes dropped, `\-` made `-`.
fn option_tags(page: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_options = false;
    let mut lines = page.lines();
    while let Some(l) = lines.next() {
        if l.starts_with(".SH") {
            in_options = l.trim() == ".SH OPTIONS";
            continue;
        }
        if in_options && l.trim() == ".TP" {
            if let Some(tag) = lines.next() {
                let mut t = tag.replace("\\-", "-");
                for f in ["\\fB", "\\fR", "\\fI", "\\fP"] {
                    t = t.replace(f, "");
                }
                out.push(t);
            }
        }
    }
    out
}

/// The options a tag names: `--long` and `-s` words.
fn named(tag: &str) -> (BTreeSet<String>, BTreeSet<char>) {
    let mut longs = BTreeSet::new();
    let mut shorts = BTreeSet::new();
    for w in tag.split(|c: char| c.is_whitespace() || "\",[]=|".contains(c)) {
        if let Some(l) = w.strip_prefix("--") {
            let l = l.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
            if !l.is_empty() {
                longs.insert(l.to_string());
            }
        } else if let Some(s) = w.strip_prefix('-') {
            let mut cs = s.chars();
            if let (Some(c), None) = (cs.next(), cs.next()) {
                if c.is_ascii_alphanumeric() {
                    shorts.insert(c);
                }
            }
        }
    }
    (longs, shorts)
}

#[test]
fn man_pages_and_command_lines_agree() {
    let mut problems = Vec::new();
    for (tool, _, cmd) in ocfs2_mmp_tools::tools() {
        let path = format!("{}/man/{tool}.8", env!("CARGO_MANIFEST_DIR"));
        let page = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut listed_l = BTreeSet::new();
        let mut listed_s = BTreeSet::new();
        for tag in option_tags(&page) {
            let (l, s) = named(&tag);
            listed_l.extend(l);
            listed_s.extend(s);
        }
        let accepted_l: BTreeSet<String> = ocfs2_toolkit::completions::long_options(&cmd)
            .into_iter()
            .collect();
        let mut accepted_s: BTreeSet<char> = cmd
            .get_arguments()
            .filter(|a| !a.is_hide_set())
            .flat_map(|a| {
                a.get_short()
                    .into_iter()
                    .chain(a.get_visible_short_aliases().unwrap_or_default())
            })
            .collect();
        accepted_s.insert('h');
        if cmd.get_version().is_some() {
            accepted_s.insert('V');
        }
        for l in accepted_l.difference(&listed_l) {
            problems.push(format!(
                "{tool}: --{l} is accepted but not in {path}'s OPTIONS"
            ));
        }
        for l in listed_l.difference(&accepted_l) {
            problems.push(format!(
                "{tool}: {path} lists --{l}, which the tool refuses"
            ));
        }
        for s in accepted_s.difference(&listed_s) {
            problems.push(format!(
                "{tool}: -{s} is accepted but not in {path}'s OPTIONS"
            ));
        }
        for s in listed_s.difference(&accepted_s) {
            problems.push(format!("{tool}: {path} lists -{s}, which the tool refuses"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
