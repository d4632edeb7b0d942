//! Copy-on-write versioned JSON files, one series per tenant and kind:
//! `tenants/<tenant>/<kind>/<version:020>.json` (kinds: `manifest`,
//! `deletes`).
//!
//! A new version is one PUT (atomic on local disk and on object stores); then
//! versions older than [`KEEP_OLD_VERSIONS`] behind it are deleted. Loading
//! takes, per tenant, the newest version that parses and passes the caller's
//! check; a half-written or unreadable one is logged and the previous one used.

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StorageError;

/// Versions kept besides the newest.
const KEEP_OLD_VERSIONS: u64 = 2;

fn dir(tenant: &str, kind: &str) -> Path {
    Path::from_iter(["tenants", tenant, kind])
}

fn path(tenant: &str, kind: &str, version: u64) -> Path {
    Path::from_iter(["tenants", tenant, kind, &format!("{version:020}.json")])
}

/// The versions under `dir`, newest first.
async fn list_versions(
    store: &dyn ObjectStore,
    dir: &Path,
) -> Result<Vec<(u64, Path)>, StorageError> {
    let metas: Vec<_> = store
        .list(Some(dir))
        .try_collect()
        .await
        .map_err(|e| StorageError::object(dir, e))?;
    let mut versions: Vec<(u64, Path)> = metas
        .into_iter()
        .filter_map(|m| {
            let v = m.location.filename()?.strip_suffix(".json")?.parse().ok()?;
            Some((v, m.location))
        })
        .collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.0));
    Ok(versions)
}

/// Every tenant's newest readable `kind` file for which `valid(value,
/// version)` holds (the version in the file matches its name, the format is
/// known…), with its version.
pub(crate) async fn load_newest<T: DeserializeOwned>(
    store: &dyn ObjectStore,
    kind: &str,
    valid: impl Fn(&T, u64) -> bool,
) -> Result<Vec<(u64, T)>, StorageError> {
    let root = Path::from("tenants");
    let listing = store
        .list_with_delimiter(Some(&root))
        .await
        .map_err(|e| StorageError::object(&root, e))?;
    let mut out = Vec::new();
    for prefix in listing.common_prefixes {
        let dir = prefix.clone().join(kind);
        for (version, path) in list_versions(store, &dir).await? {
            let loaded = async {
                let bytes = store
                    .get(&path)
                    .await
                    .map_err(|e| e.to_string())?
                    .bytes()
                    .await
                    .map_err(|e| e.to_string())?;
                serde_json::from_slice::<T>(&bytes).map_err(|e| e.to_string())
            }
            .await;
            match loaded {
                Ok(value) if valid(&value, version) => {
                    out.push((version, value));
                    break;
                }
                Ok(_) => tracing::warn!(%path, kind, "version mismatch; trying an older one"),
                Err(reason) => {
                    tracing::warn!(%path, kind, %reason, "unreadable; trying an older one")
                }
            }
        }
    }
    Ok(out)
}

/// Writes `value` as `version` of the tenant's `kind` file, then prunes old versions.
pub(crate) async fn store_version<T: Serialize>(
    store: &dyn ObjectStore,
    tenant: &str,
    kind: &str,
    version: u64,
    value: &T,
) -> Result<(), StorageError> {
    let path = path(tenant, kind, version);
    let body = serde_json::to_vec(value).map_err(|e| StorageError::Manifest {
        key: path.to_string(),
        reason: e.to_string(),
    })?;
    store
        .put(&path, PutPayload::from(body))
        .await
        .map_err(|e| StorageError::object(&path, e))?;
    for (v, p) in list_versions(store, &dir(tenant, kind)).await? {
        if v + KEEP_OLD_VERSIONS < version
            && let Err(e) = store.delete(&p).await
        {
            tracing::warn!(path = %p, error = %e, "could not delete an old version");
        }
    }
    Ok(())
}
