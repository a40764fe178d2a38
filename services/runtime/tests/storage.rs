//! Study storage against the real S3 server of the suite (s3s-fs) and a local directory: the same
//! put/get/list/delete behaviour, and no key can escape its prefix.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use spinescreen_proto::StudyUid;
use spinescreen_runtime::storage::StorageError;
use spinescreen_runtime::{StoreConfig, StudyStore};

fn unique_uid() -> StudyUid {
    let n = u128::from_le_bytes(*uuid::Uuid::new_v4().as_bytes()) % 10u128.pow(30);
    StudyUid::new(format!("1.2.826.0.1.3680043.9.{n}")).unwrap()
}

async fn put_get_list_delete(store: &StudyStore) {
    let uid = unique_uid();
    let keys = uid.keys();
    store
        .put(&keys.volume_header(), b"{\"dims\":[1,2,3]}".to_vec())
        .await
        .unwrap();
    store.put(&keys.detection(), b"{}".to_vec()).await.unwrap();
    store
        .put(&keys.secondary_capture(1), vec![7u8; 1000])
        .await
        .unwrap();

    assert_eq!(
        &store.get(&keys.volume_header()).await.unwrap()[..],
        b"{\"dims\":[1,2,3]}"
    );
    assert!(store.exists(&keys.detection()).await.unwrap());
    let listed = store.list(keys.prefix()).await.unwrap();
    assert_eq!(
        listed,
        vec![
            keys.detection(),
            keys.secondary_capture(1),
            keys.volume_header()
        ]
    );
    assert_eq!(
        store.list(&keys.secondary_capture_prefix()).await.unwrap(),
        vec![keys.secondary_capture(1)]
    );

    // Overwrite is idempotent.
    store
        .put(&keys.detection(), b"{\"v\":2}".to_vec())
        .await
        .unwrap();
    assert_eq!(
        &store.get(&keys.detection()).await.unwrap()[..],
        b"{\"v\":2}"
    );

    for k in &listed {
        store.delete(k).await.unwrap();
    }
    store
        .delete(&keys.detection())
        .await
        .expect("deleting twice is fine");
    assert!(!store.exists(&keys.detection()).await.unwrap());
    assert!(matches!(
        store.get(&keys.volume_header()).await,
        Err(StorageError::NotFound(_))
    ));
    assert!(store.list(keys.prefix()).await.unwrap().is_empty());
}

async fn rejects_escaping_keys(store: &StudyStore) {
    assert!(
        StudyUid::new("../x").is_err(),
        "a bad UID never becomes a key"
    );
    for bad in [
        "studies/../x",
        "../etc/passwd",
        "/abs/key",
        "studies/./x",
        "studies/1.2/../../x",
    ] {
        assert!(
            matches!(
                store.put(bad, b"x".to_vec()).await,
                Err(StorageError::InvalidKey(_))
            ),
            "{bad:?} accepted by put"
        );
        assert!(
            matches!(store.get(bad).await, Err(StorageError::InvalidKey(_))),
            "{bad:?} accepted by get"
        );
        assert!(matches!(
            store.delete(bad).await,
            Err(StorageError::InvalidKey(_))
        ));
    }
    assert!(matches!(
        store.list("..").await,
        Err(StorageError::InvalidKey(_))
    ));
}

async fn s3_store() -> Option<StudyStore> {
    s3_store_with(common::s3_config()).await
}

/// The suite's S3 store with unsigned payloads (`unsigned_payload = true`).
async fn s3_store_unsigned_payload() -> Option<StudyStore> {
    let mut config = common::s3_config();
    if let StoreConfig::S3 {
        unsigned_payload, ..
    } = &mut config
    {
        *unsigned_payload = true;
    }
    s3_store_with(config).await
}

async fn s3_store_with(config: StoreConfig) -> Option<StudyStore> {
    if common::skip_services() {
        eprintln!("SPINESCREEN_SKIP_SERVICES=1: skipping an S3 test");
        return None;
    }
    let store = StudyStore::from_config(&config).expect("S3 configuration is valid");
    if let Err(e) = store.exists("probe/never-there").await {
        panic!(
            "S3 server not usable ({config:?}): {e}. Run scripts/test.sh \
             (it starts s3s-fs with bucket spinescreen-test) or set SPINESCREEN_SKIP_SERVICES=1"
        );
    }
    Some(store)
}

fn local_store(dir: &tempfile::TempDir) -> StudyStore {
    StudyStore::from_config(&StoreConfig::Local {
        root: dir.path().join("created-on-demand"),
    })
    .unwrap()
}

#[tokio::test]
async fn s3_put_get_list_delete() {
    let Some(store) = s3_store().await else {
        return;
    };
    put_get_list_delete(&store).await;
}

#[tokio::test]
async fn s3_with_unsigned_payloads_puts_gets_lists_and_deletes() {
    let Some(store) = s3_store_unsigned_payload().await else {
        return;
    };
    put_get_list_delete(&store).await;
}

#[tokio::test]
async fn s3_rejects_bad_uid_keys() {
    let Some(store) = s3_store().await else {
        return;
    };
    rejects_escaping_keys(&store).await;
}

#[tokio::test]
async fn local_put_get_list_delete() {
    let dir = tempfile::tempdir().unwrap();
    put_get_list_delete(&local_store(&dir)).await;
}

#[tokio::test]
async fn local_rejects_bad_uid_keys_and_writes_nothing_outside_root() {
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(&dir);
    rejects_escaping_keys(&store).await;
    assert!(!dir.path().join("x").exists());
    assert!(!dir.path().join("etc").exists());
}

#[test]
fn store_config_reads_from_toml_with_defaults() {
    let c: StoreConfig = toml::from_str(
        "kind = \"s3\"\nendpoint = \"http://127.0.0.1:8014\"\nbucket = \"b\"\nallow_http = true",
    )
    .unwrap();
    assert!(matches!(
        c,
        StoreConfig::S3 { ref region, allow_http: true, unsigned_payload: false, .. }
            if region == "us-east-1"
    ));
    let l: StoreConfig = toml::from_str("kind = \"local\"\nroot = \"/tmp/x\"").unwrap();
    assert_eq!(
        l,
        StoreConfig::Local {
            root: "/tmp/x".into()
        }
    );
}
