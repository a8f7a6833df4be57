//! Writers killed mid-write (`kill -9`) leave their temporary file behind; the next
//! write into the same directory removes those of dead processes, and only those.

use churn_features::write::{remove_stale_temps, write_file_atomic};

/// The id of a process that has exited.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn the_next_write_removes_temp_files_of_dead_writers_only() {
    let dir = tempfile::tempdir().unwrap();
    let dead = dead_pid();
    let own = std::process::id();
    let stale_file = dir.path().join(format!(".scores.parquet.tmp-{dead}"));
    let stale_dir = dir.path().join(format!(".v20260101.tmp-{dead}"));
    std::fs::write(&stale_file, b"half a parquet file").unwrap();
    std::fs::create_dir(&stale_dir).unwrap();
    std::fs::write(stale_dir.join("model.bin"), b"half a model").unwrap();
    // Ours (this process is writing it), not of our naming, or a user's file.
    let kept = [
        format!(".scores.parquet.tmp-{own}"),
        ".notes.tmp-abc".to_string(),
        format!("scores.tmp-{dead}"),
        "scores.parquet".to_string(),
    ];
    for name in &kept {
        std::fs::write(dir.path().join(name), b"keep").unwrap();
    }

    write_file_atomic(&dir.path().join("report.json"), b"{}").unwrap();

    assert!(
        !stale_file.exists() && !stale_dir.exists(),
        "stale temps survived"
    );
    for name in &kept {
        assert!(dir.path().join(name).exists(), "{name} was removed");
    }
    assert_eq!(
        std::fs::read(dir.path().join("report.json")).unwrap(),
        b"{}"
    );
    // Nothing left to remove the second time.
    assert_eq!(remove_stale_temps(dir.path()), 0);
}
