//! ARCHITECTURE.md stays true where a test can tell: every invariant of its
//! last section names at least one test, and every test it names exists.

#[test]
fn every_invariant_names_a_test_that_exists() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = include_str!("../../ARCHITECTURE.md");
    let section = text
        .split("## Architecture invariants")
        .nth(1)
        .expect("ARCHITECTURE.md has its invariants section");
    let mut invariants = 0;
    for item in section.split("\n\n").flat_map(split_numbered) {
        invariants += 1;
        let named: Vec<(&str, &str)> = item
            .split('`')
            .filter_map(|quoted| quoted.split_once(".rs::"))
            .collect();
        assert!(!named.is_empty(), "this invariant names no test: {item}");
        for (file, test) in named {
            let path = root.join(format!("{file}.rs"));
            let source = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (named in: {item})", path.display()));
            assert!(
                source.contains(&format!("fn {test}(")),
                "{} has no test {test} (named in: {item})",
                path.display()
            );
        }
    }
    assert_eq!(invariants, 8, "DESIGN.md's eight invariants, each listed");
}

/// The items of a numbered list (`1. ...`), each with its continuation lines.
fn split_numbered(paragraph: &str) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    for line in paragraph.lines() {
        let numbered = line
            .split_once(". ")
            .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if numbered {
            items.push(line.to_string());
        } else if let Some(last) = items.last_mut() {
            last.push(' ');
            last.push_str(line.trim());
        }
    }
    items
}
