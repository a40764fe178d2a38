//! Directory destination: `<root>/<StudyInstanceUID>/` with `sr.dcm`, `sc/NNNN.dcm`,
//! `result.json` and `preview.png`. Each file is written to a temporary name and renamed, so a
//! reader never sees half a file; rewriting a study replaces its files.

use super::Package;
use std::path::{Path, PathBuf};

async fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("partial");
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, path).await
}

/// Write the package under `root`; returns the study directory.
pub async fn write(root: &Path, pkg: &Package) -> Result<PathBuf, String> {
    let dir = root.join(&pkg.study_uid);
    let sc_dir = dir.join("sc");
    let io = |what: &str, e: std::io::Error| format!("{what} in {}: {e}", dir.display());
    tokio::fs::create_dir_all(&sc_dir)
        .await
        .map_err(|e| io("creating directories", e))?;
    write_atomic(&dir.join("sr.dcm"), &pkg.sr.file)
        .await
        .map_err(|e| io("writing sr.dcm", e))?;
    for (n, sc) in pkg.sc.iter().enumerate() {
        write_atomic(&sc_dir.join(format!("{n:04}.dcm")), &sc.file)
            .await
            .map_err(|e| io("writing a secondary capture", e))?;
    }
    write_atomic(&dir.join("result.json"), &pkg.result_json)
        .await
        .map_err(|e| io("writing result.json", e))?;
    if let Some(png) = &pkg.preview_png {
        write_atomic(&dir.join("preview.png"), png)
            .await
            .map_err(|e| io("writing preview.png", e))?;
    }
    Ok(dir)
}
