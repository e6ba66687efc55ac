//! The SQLite file on disk: it holds client secrets and tokens (in plaintext without
//! `NANGO_ENCRYPTION_KEY`), so it is made readable by its owner only, whatever the umask.
//!
//! The database file is created here, before SQLite opens it, with mode 0600 (and a missing
//! parent directory with 0700). SQLite creates the `-wal` and `-shm` files later with the mode
//! of the database file (its unix VFS copies it), so they are 0600 too without touching the
//! process umask (which is process-wide and would race with other threads creating files). Files
//! left more open by an earlier version are tightened at start.

use std::path::{Path, PathBuf};

use super::StoreError;

/// Owner read and write only.
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;
/// Owner only.
#[cfg(unix)]
const DIR_MODE: u32 = 0o700;

/// The database file and the companions SQLite keeps next to it.
pub fn database_files(path: &Path) -> [PathBuf; 3] {
    let with_suffix = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [path.to_path_buf(), with_suffix("-wal"), with_suffix("-shm")]
}

fn file_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::File {
        path: path.display().to_string(),
        source,
    }
}

/// Creates `path` (and its missing parent directories) for the owner only, or tightens the
/// modes of an existing database and its `-wal`/`-shm` files.
#[cfg(unix)]
pub fn prepare(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(parent)
                .map_err(|e| file_error(parent, e))?;
        }
    }
    // `create_new` fails when the file exists: then its mode is checked below instead.
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(file_error(path, e)),
    }
    for file in database_files(path) {
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(FILE_MODE))
                .map_err(|e| file_error(&file, e))?;
            tracing::warn!(
                file = %file.display(),
                "the database file was readable by other users; it is now owner-only (0600)"
            );
        }
    }
    Ok(())
}

#[cfg(not(unix))]
pub fn prepare(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}

/// Whether a SQLite URL names a file this process may create or change (not an in-memory
/// database, not one opened read-only as `nango doctor` does: it looks, it creates nothing).
pub fn names_a_writable_file(url: &str, filename: &Path) -> bool {
    !(url.contains(":memory:")
        || url.contains("mode=memory")
        || url.contains("mode=ro")
        || filename.to_string_lossy().starts_with("file:"))
}
