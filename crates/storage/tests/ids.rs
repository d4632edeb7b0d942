//! The id index end to end: lookups from the head, after a flush, after a
//! reopen, after compaction, and with a corrupt sidecar.

use inferscope_model::{Labels, LogEntry, PushStream, TimeRange};
use inferscope_storage::{IdQuery, Store, StoreConfig, WalSync};

fn config(dir: &std::path::Path) -> StoreConfig {
    let mut c = StoreConfig::local(dir).expect("config");
    c.wal_sync = WalSync::Never;
    c.compaction_min_blocks = 2;
    c
}

/// Every stream gets 200 entries with distinct ids; the trace `shared`
/// appears once per app, in JSON, logfmt and structured metadata.
fn pushes(base: i64) -> Vec<PushStream> {
    let mut out = Vec::new();
    for (a, app) in ["gateway", "scheduler", "worker"].iter().enumerate() {
        let mut entries: Vec<LogEntry> = (0..200)
            .map(|i| {
                let t = base + i * 1000 + a as i64;
                LogEntry::new(
                    t,
                    format!(r#"{{"msg":"x","trace_id":"t-{app}-{base}-{i}"}}"#),
                )
            })
            .collect();
        let t = base + 150_500 + a as i64;
        entries.push(match a {
            0 => LogEntry::new(t, r#"{"msg":"in","trace_id":"shared"}"#.to_string()),
            1 => LogEntry::new(t, "level=info msg=picked trace_id=shared".to_string()),
            _ => LogEntry {
                line_metadata: Vec::new(),
                detected_level: None,
                timestamp_ns: t,
                line: "token sampled".into(),
                structured_metadata: vec![("trace_id".into(), "shared".into())],
            },
        });
        out.push(PushStream {
            labels: Labels::from_pairs([("app", *app)]),
            entries,
        });
    }
    out
}

async fn lookup(
    store: &Store,
    id: &str,
) -> (Vec<(i64, String)>, inferscope_storage::IdLookupStats) {
    let q = IdQuery::new(&[id]).expect("query");
    let (tasks, stats) = store
        .lookup_ids("t1", &q, TimeRange::all())
        .await
        .expect("lookup");
    let mut out = Vec::new();
    for t in &tasks {
        t.run(&mut |l, e| {
            if q.matches(e.line, &e.structured_metadata) {
                out.push((e.timestamp_ns, l.get("app").unwrap_or("").to_string()));
            }
        })
        .expect("run");
    }
    out.sort();
    (out, stats)
}

fn expected(base: i64) -> Vec<(i64, String)> {
    ["gateway", "scheduler", "worker"]
        .iter()
        .enumerate()
        .map(|(a, app)| (base + 150_500 + a as i64, app.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_in_head_after_flush_reopen_and_compaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(config(dir.path())).await.expect("open");
    store.append("t1", &pushes(0)).expect("append");
    let (got, stats) = lookup(&store, "shared").await;
    assert_eq!(got, expected(0));
    assert_eq!(stats.head_streams, 3);
    let (got, _) = lookup(&store, "t-worker-0-7").await;
    assert_eq!(got, vec![(7002, "worker".to_string())]);

    store.flush().await.expect("flush");
    store.append("t1", &pushes(1_000_000)).expect("append");
    store.flush().await.expect("flush");
    let (got, stats) = lookup(&store, "shared").await;
    let mut want = expected(0);
    want.extend(expected(1_000_000));
    assert_eq!(got, want);
    assert_eq!((stats.blocks_considered, stats.blocks_read), (2, 2));
    assert_eq!(stats.rows_selected, 6);
    assert_eq!(stats.blocks_unindexed, 0);
    // An id of one block only: the other block is not fetched.
    let (got, stats) = lookup(&store, "t-gateway-1000000-3").await;
    assert_eq!(got, vec![(1_003_000, "gateway".to_string())]);
    assert_eq!((stats.blocks_skipped, stats.blocks_read), (1, 1));
    let (got, stats) = lookup(&store, "absent").await;
    assert!(got.is_empty());
    assert_eq!(stats.blocks_read, 0);
    drop(store);

    let store = Store::open(config(dir.path())).await.expect("reopen");
    let sidecars: Vec<std::path::PathBuf> = walk(dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "ids"))
        .collect();
    let sidecar_bytes: u64 = sidecars
        .iter()
        .map(|p| std::fs::metadata(p).expect("stat").len())
        .sum();
    assert_eq!(
        store.preload_id_sidecars().await,
        (2, sidecar_bytes),
        "both blocks' sidecars loaded"
    );
    // Held in memory: lookups still use them with the files gone.
    let saved: Vec<Vec<u8>> = sidecars
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect();
    for p in &sidecars {
        std::fs::remove_file(p).expect("remove");
    }
    let (got, stats) = lookup(&store, "t-gateway-1000000-3").await;
    assert_eq!(got, vec![(1_003_000, "gateway".to_string())]);
    assert_eq!((stats.blocks_skipped, stats.blocks_read), (1, 1));
    assert_eq!(stats.blocks_unindexed, 0);
    for (p, bytes) in sidecars.iter().zip(saved) {
        std::fs::write(p, bytes).expect("restore");
    }
    assert_eq!(lookup(&store, "shared").await.0, want);
    store.maintain().await.expect("compact");
    assert_eq!(store.metrics().compactions, 1);
    let (got, stats) = lookup(&store, "shared").await;
    assert_eq!(got, want);
    assert_eq!((stats.blocks_considered, stats.blocks_read), (1, 1));
    // The old blocks' sidecars went with them.
    let sidecars = walk(dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "ids"))
        .count();
    assert_eq!(sidecars, 1);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_sidecar_is_reported_and_the_block_scanned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(config(dir.path())).await.expect("open");
    store.append("t1", &pushes(0)).expect("append");
    store.flush().await.expect("flush");
    drop(store);
    let sidecar = walk(dir.path())
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "ids"))
        .expect("a sidecar");
    let mut bytes = std::fs::read(&sidecar).expect("read");
    bytes[20] ^= 0xff;
    std::fs::write(&sidecar, bytes).expect("write");

    let store = Store::open(config(dir.path())).await.expect("reopen");
    assert_eq!(store.preload_id_sidecars().await, (0, 0), "nothing loaded");
    let (got, stats) = lookup(&store, "shared").await;
    assert_eq!(got, expected(0));
    assert_eq!((stats.blocks_unindexed, stats.blocks_read), (1, 1));
    assert_eq!(store.metrics().id_sidecars_corrupt, 1);
    // Reported once: the verdict is kept with the block.
    lookup(&store, "shared").await;
    assert_eq!(store.metrics().id_sidecars_corrupt, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_id_hint_prunes_but_keeps_every_candidate() {
    use inferscope_storage::ScanRequest;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(config(dir.path())).await.expect("open");
    let mut streams = pushes(0);
    // A stream carrying the field as a label: always scanned in full.
    streams.push(PushStream {
        labels: Labels::from_pairs([("app", "labelled"), ("trace_id", "shared")]),
        entries: vec![LogEntry::new(5, "no id in the line".to_string())],
    });
    store.append("t1", &streams).expect("append");
    let scan = |hint: Option<&str>| {
        let store = &store;
        let req = ScanRequest {
            tenant: "t1".into(),
            matchers: vec![],
            range: TimeRange::all(),
            line_filter: None,
            id_hint: hint.map(|h| ("trace_id".to_string(), h.to_string())),
        };
        async move {
            let mut seen = Vec::new();
            for t in store.scan(&req).await.expect("scan") {
                t.run(&mut |l, e| {
                    let meta = e.structured_metadata.get("trace_id");
                    let label = l.get("trace_id");
                    seen.push((e.timestamp_ns, meta.or(label).map(str::to_string)));
                })
                .expect("run");
            }
            seen.sort();
            seen
        }
    };
    for flushed in [false, true] {
        let all = scan(None).await;
        let hinted = scan(Some("shared")).await;
        if flushed {
            // Rows the sidecar points at, plus the labelled stream.
            assert_eq!(hinted.len(), 4, "{hinted:?}");
        }
        let wanted = |v: &Vec<(i64, Option<String>)>| -> Vec<(i64, Option<String>)> {
            v.iter()
                .filter(|(_, id)| id.as_deref() == Some("shared"))
                .cloned()
                .collect()
        };
        assert_eq!(wanted(&hinted), wanted(&all), "flushed: {flushed}");
        assert_eq!(wanted(&all).len(), 2);
        if !flushed {
            store.flush().await.expect("flush");
        }
    }
}
