//! File writing the crate's savers share (wirings, drawings, datasets, the
//! training loop's checkpoints and logs), public so that programs write
//! their results the same way.

/// Writes `contents` to `path` through a temporary file in the same folder
/// and a rename: a reader never sees a half-written file, and a failed write
/// (a full disk, a kill) leaves what was there before.
///
/// ```
/// let path = std::env::temp_dir().join(format!("ncps-doc-{}.json", std::process::id()));
/// ncps::fs::write_atomically(&path, b"{}")?;
/// assert_eq!(std::fs::read(&path)?, b"{}");
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write_atomically(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"))?;
    let mut temporary = name.to_os_string();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = path.with_file_name(temporary);
    let result = std::fs::File::create(&temporary).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    match result.and_then(|()| std::fs::rename(&temporary, path)) {
        Ok(()) => Ok(()),
        Err(error) => {
            let _ = std::fs::remove_file(&temporary);
            Err(error)
        }
    }
}
