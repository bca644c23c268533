//! The runner's files in its state directory: the development API key (tenant `default`,
//! principal `developer`, every scope), made on the first start and kept in `dev-api-key`
//! (mode 0600) so later starts print the same key, and `engine-endpoint`, the embedded
//! engine's URL, for the `keys` command.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use shared::apikeys;
use shared::auth::Scopes;
use shared::config::Secret;
use shared::ids::{PrincipalId, TenantId};
use shared::store::Store;

use crate::template::Error;

/// The development key's tenant and principal.
pub const DEV_TENANT: &str = "default";
pub const DEV_PRINCIPAL: &str = "developer";

/// Writes `text` to `path` readable by its owner only (0600), replacing it whole.
pub fn write_private(path: &Path, text: &str) -> Result<(), Error> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // A file left over with wider permissions keeps them on open: narrow them.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: {e}", path.display()).into()
    })
}

/// Makes a development key in `store`.
async fn create(store: &Store) -> Result<Secret, Error> {
    let tenant = TenantId::new(DEV_TENANT)?;
    let principal = PrincipalId::new(DEV_PRINCIPAL)?;
    let (key, record) = apikeys::create(
        store,
        &tenant,
        &principal,
        Scopes::all(),
        Some("development key (local-api)"),
    )
    .await
    .map_err(|e| format!("creating the development API key: {e}"))?;
    tracing::debug!(key_id = %record.key_id, "development API key created");
    Ok(key)
}

/// The development key: with `state_dir`, the one kept in `<state_dir>/dev-api-key` while
/// `store` still knows it (a deleted data file, or another engine, gets a new one), made
/// and kept there otherwise; without, a new one (in-memory data).
pub async fn ensure(store: &Store, state_dir: Option<&Path>) -> Result<Secret, Error> {
    let Some(dir) = state_dir else {
        return create(store).await;
    };
    let file = dir.join(shared::localstate::DEV_API_KEY);
    if let Ok(kept) = std::fs::read_to_string(&file) {
        let kept = kept.trim();
        let known = apikeys::lookup(store, kept)
            .await
            .map_err(|e| format!("checking the development API key: {e}"))?;
        if known.is_some_and(|r| !r.revoked) {
            return Ok(Secret::new(kept.to_owned()));
        }
    }
    let key = create(store).await?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    write_private(&file, &format!("{}\n", key.expose()))?;
    Ok(key)
}
