//! Runs every `sql/*.sql` file against a fresh server and compares with `sql/*.result`.
//! Set UPDATE_GOLDEN=1 to rewrite the expected files after checking the differences by hand.

use duet_tests::{crate_file, golden, TestServer};

#[test]
fn sql_golden_files() {
    let dir = crate_file("sql");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "sql")).collect();
    files.sort();
    assert!(!files.is_empty(), "no golden files in {}", dir.display());
    let update = std::env::var("UPDATE_GOLDEN").is_ok();
    let mut failures = Vec::new();
    for f in files {
        let srv = TestServer::start(&[]);
        let mut s = srv.session();
        let got = golden::run(&mut s, &std::fs::read_to_string(&f).unwrap());
        let expected_path = f.with_extension("result");
        if update {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != want {
            failures.push(format!("{}:\n--- expected\n{want}\n--- got\n{got}", f.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
