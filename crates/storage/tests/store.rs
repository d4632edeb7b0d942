//! End-to-end tests of the store: durability, queries, corruption, compaction, retention.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use inferscope_model::{
    LabelMatcher, Labels, Level, LineMetadata, LogEntry, MatchOp, PushStream, TimeRange,
};
use inferscope_storage::{LineFilter, ScanRequest, Store, StoreConfig, WalSync};

struct Contains(&'static str);
impl LineFilter for Contains {
    fn keep(&self, line: &[u8]) -> bool {
        memchr::memmem::find(line, self.0.as_bytes()).is_some()
    }
}

fn labels(app: &str, pod: &str) -> Labels {
    Labels::from_pairs([("app", app), ("pod", pod)])
}

fn push(app: &str, pod: &str, ts: std::ops::Range<i64>) -> PushStream {
    PushStream {
        labels: labels(app, pod),
        entries: ts
            .rev() // out of order on purpose
            .map(|t| {
                let line = format!(
                    "{app} {pod} line {t}{}",
                    if t % 10 == 0 { " ERROR" } else { "" }
                );
                // `seq`: the line's number, as line metadata (a range of it).
                let start = (app.len() + pod.len() + 7) as u32;
                let end = start + t.to_string().len() as u32;
                LogEntry {
                    line_metadata: LineMetadata::checked("seq", &line, start, end)
                        .into_iter()
                        .collect(),
                    timestamp_ns: t,
                    line,
                    structured_metadata: vec![("trace_id".into(), format!("tr{t}"))],
                    // A level on some entries, as normalization adds it.
                    detected_level: match t % 10 {
                        0 => Some(Level::Error),
                        5 => Some(Level::Info),
                        _ => None,
                    },
                }
            })
            .collect(),
    }
}

fn config(dir: &std::path::Path) -> StoreConfig {
    let mut c = StoreConfig::local(dir).expect("config");
    c.wal_sync = WalSync::Never;
    c
}

type Seen = BTreeMap<(String, i64), (String, Vec<(String, String)>)>;

async fn scan_all(
    store: &Store,
    matchers: Vec<LabelMatcher>,
    range: TimeRange,
    filter: Option<Arc<dyn LineFilter>>,
) -> Seen {
    let tasks = store
        .scan(&ScanRequest {
            tenant: "t1".into(),
            matchers,
            range,
            line_filter: filter,
            id_hint: None,
        })
        .await
        .expect("scan");
    let mut out = Seen::new();
    for t in &tasks {
        let (lo, hi) = t.time_bounds();
        t.run(&mut |l, e| {
            assert!(
                e.timestamp_ns >= lo && e.timestamp_ns <= hi,
                "outside bounds"
            );
            let prev = out.insert(
                (l.to_string(), e.timestamp_ns),
                (e.line.to_string(), e.structured_metadata.to_vec()),
            );
            assert!(prev.is_none(), "duplicate entry {l} {}", e.timestamp_ns);
        })
        .expect("run");
    }
    out
}

fn eq(name: &str, v: &str) -> LabelMatcher {
    LabelMatcher::new(name, MatchOp::Eq, v).expect("matcher")
}

async fn fill(store: &Store) {
    store
        .append(
            "t1",
            &[push("api", "p1", 0..100), push("web", "p2", 50..150)],
        )
        .expect("append");
    store
        .append("t2", &[push("other", "p9", 0..10)])
        .expect("append");
}

#[tokio::test]
async fn append_flush_reopen_scan_labels() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(config(dir.path())).await.expect("open");
        fill(&store).await;
        // Visible from the head before any flush.
        assert_eq!(
            scan_all(&store, vec![], TimeRange::all(), None).await.len(),
            200
        );
        store.flush().await.expect("flush");
        assert_eq!(store.metrics().blocks, 2);
        // More data in the head, next to the blocks.
        store
            .append("t1", &[push("api", "p1", 100..120)])
            .expect("append");
        assert_eq!(
            scan_all(&store, vec![], TimeRange::all(), None).await.len(),
            220
        );
        store.flush().await.expect("flush");
    }
    let store = Store::open(config(dir.path())).await.expect("reopen");
    let all = scan_all(&store, vec![], TimeRange::all(), None).await;
    assert_eq!(all.len(), 220);
    let (line, meta) = &all[&(labels("api", "p1").to_string(), 7)];
    assert_eq!(line, "api p1 line 7");
    let expected = [("trace_id", "tr7"), ("seq", "7")];
    assert_eq!(
        meta,
        &expected
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .to_vec()
    );
    let (_, meta) = &all[&(labels("api", "p1").to_string(), 10)];
    let expected = [
        ("detected_level", "error"),
        ("trace_id", "tr10"),
        ("seq", "10"),
    ];
    assert_eq!(
        meta,
        &expected
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .to_vec()
    );

    let api = scan_all(&store, vec![eq("app", "api")], TimeRange::all(), None).await;
    assert_eq!(api.len(), 120);
    let ranged = scan_all(&store, vec![], TimeRange::new(90, 110), None).await;
    assert_eq!(ranged.len(), 20 + 20);
    let errors = scan_all(
        &store,
        vec![eq("app", "web")],
        TimeRange::all(),
        Some(Arc::new(Contains("ERROR"))),
    )
    .await;
    assert_eq!(errors.len(), 10);

    assert_eq!(
        store
            .label_names("t1", TimeRange::all(), &[])
            .await
            .expect("names"),
        vec!["app", "pod"]
    );
    assert_eq!(
        store
            .label_values("t1", "app", TimeRange::all(), &[])
            .await
            .expect("values"),
        vec!["api", "web"]
    );
    assert_eq!(
        store
            .label_values("t1", "app", TimeRange::new(120, 200), &[])
            .await
            .expect("values"),
        vec!["web"]
    );
    assert_eq!(
        store
            .series("t1", &[eq("pod", "p2")], TimeRange::all())
            .await
            .expect("series"),
        vec![labels("web", "p2")]
    );
    // Tenants are isolated.
    assert_eq!(
        store
            .label_values("t2", "app", TimeRange::all(), &[])
            .await
            .expect("values"),
        vec!["other"]
    );
}

#[tokio::test]
async fn crash_without_flush_keeps_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut c = config(dir.path());
        c.wal_sync = WalSync::Always;
        let store = Store::open(c).await.expect("open");
        fill(&store).await;
        store.flush().await.expect("flush");
        store
            .append("t1", &[push("api", "p1", 100..130)])
            .expect("append");
        // dropped without flush
    }
    let store = Store::open(config(dir.path())).await.expect("reopen");
    assert_eq!(store.metrics().wal_records_replayed, 1);
    let all = scan_all(&store, vec![], TimeRange::all(), None).await;
    assert_eq!(all.len(), 230);
    // The replayed entry's line metadata reads from its line.
    let (_, meta) = &all[&(labels("api", "p1").to_string(), 123)];
    assert_eq!(meta[1], ("seq".to_string(), "123".to_string()));
    // Reopen again after another crash: still exactly once.
    drop(store);
    let store = Store::open(config(dir.path())).await.expect("reopen");
    assert_eq!(
        scan_all(&store, vec![], TimeRange::all(), None).await.len(),
        230
    );
}

#[tokio::test]
async fn torn_wal_tail_is_truncated() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(config(dir.path())).await.expect("open");
        store
            .append("t1", &[push("api", "p1", 0..10)])
            .expect("append");
        store
            .append("t1", &[push("api", "p1", 10..20)])
            .expect("append");
    }
    let wal_dir = dir.path().join("wal");
    let mut segs: Vec<_> = std::fs::read_dir(&wal_dir)
        .expect("wal dir")
        .map(|e| e.expect("entry").path())
        .collect();
    segs.sort();
    let last = segs.last().expect("segment");
    let len = std::fs::metadata(last).expect("meta").len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(last)
        .expect("open");
    f.set_len(len - 7).expect("truncate");
    drop(f);
    let store = Store::open(config(dir.path())).await.expect("reopen");
    assert_eq!(store.metrics().wal_tail_truncations, 1);
    assert_eq!(
        scan_all(&store, vec![], TimeRange::all(), None).await.len(),
        10
    );
}

fn block_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join("blocks")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn corrupt_block_is_skipped_and_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(config(dir.path())).await.expect("open");
    store
        .append("t1", &[push("api", "p1", 0..100)])
        .expect("append");
    store.flush().await.expect("flush");
    store
        .append("t1", &[push("web", "p2", 0..50)])
        .expect("append");
    store.flush().await.expect("flush");
    let files = block_files(dir.path());
    assert_eq!(files.len(), 2);
    // Flip bytes in the first block (the api stream).
    let mut data = std::fs::read(&files[0]).expect("read");
    let mid = data.len() / 2;
    for b in &mut data[mid..mid + 16] {
        *b ^= 0xff;
    }
    std::fs::write(&files[0], &data).expect("write");
    let got = scan_all(&store, vec![], TimeRange::all(), None).await;
    assert_eq!(got.len(), 50);
    assert_eq!(store.metrics().corrupt_blocks_skipped, 1);
    // Reopen reports it too, and never crashes.
    drop(store);
    std::fs::remove_file(&files[1]).expect("remove");
    let store = Store::open(config(dir.path())).await.expect("reopen");
    assert!(
        scan_all(&store, vec![], TimeRange::all(), None)
            .await
            .is_empty()
    );
    assert!(store.metrics().corrupt_blocks_skipped >= 1);
}

#[tokio::test]
async fn compaction_keeps_every_entry_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = config(dir.path());
    c.compaction_min_blocks = 3;
    let store = Store::open(c.clone()).await.expect("open");
    for i in 0..4 {
        store
            .append(
                "t1",
                &[
                    push("api", "p1", i * 100..i * 100 + 100),
                    push("web", "p2", i * 10..i * 10 + 5),
                ],
            )
            .expect("append");
        store.flush().await.expect("flush");
    }
    let before = scan_all(&store, vec![], TimeRange::all(), None).await;
    assert_eq!(store.metrics().blocks, 4);
    store.maintain().await.expect("maintain");
    let m = store.metrics();
    assert_eq!((m.blocks, m.compactions), (1, 1));
    assert_eq!(block_files(dir.path()).len(), 1);
    assert_eq!(
        scan_all(&store, vec![], TimeRange::all(), None).await,
        before
    );
    drop(store);
    let store = Store::open(c).await.expect("reopen");
    assert_eq!(
        scan_all(&store, vec![], TimeRange::all(), None).await,
        before
    );
}

#[tokio::test]
async fn retention_deletes_old_blocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as i64;
    {
        let store = Store::open(config(dir.path())).await.expect("open");
        store
            .append("t1", &[push("old", "p", 1_000..1_010)])
            .expect("append");
        store.flush().await.expect("flush");
    }
    let mut c = config(dir.path());
    c.retention = Some(Duration::from_secs(3600));
    let store = Store::open(c).await.expect("open");
    store
        .append("t1", &[push("new", "p", now..now + 10)])
        .expect("append");
    // Too old for retention: dropped when the head is flushed.
    store
        .append("t1", &[push("old2", "p", 2_000..2_010)])
        .expect("append");
    store.flush().await.expect("flush");
    assert_eq!(store.metrics().blocks, 2);
    store.maintain().await.expect("maintain");
    let m = store.metrics();
    assert_eq!((m.blocks, m.retention_deleted_blocks), (1, 1));
    let got = scan_all(&store, vec![], TimeRange::all(), None).await;
    assert_eq!(got.len(), 10);
    assert_eq!(block_files(dir.path()).len(), 1);
    assert_eq!(
        store
            .label_values("t1", "app", TimeRange::all(), &[])
            .await
            .expect("values"),
        vec!["new"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_and_flushes_lose_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = config(dir.path());
    c.wal_sync = WalSync::Always;
    let store = Arc::new(Store::open(c.clone()).await.expect("open"));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let base = (w * 1000 + i * 10) as i64;
                    store
                        .append("t1", &[push("api", &format!("w{w}"), base..base + 10)])
                        .expect("append");
                }
            })
        })
        .collect();
    for _ in 0..5 {
        store.flush().await.expect("flush");
        let n = scan_all(&store, vec![], TimeRange::all(), None).await.len();
        assert!(n <= 2000);
    }
    for w in writers {
        w.join().expect("writer");
    }
    assert_eq!(
        scan_all(&store, vec![], TimeRange::all(), None).await.len(),
        2000
    );
    assert!(store.metrics().wal_fsyncs <= 200 + 10);
    store.flush().await.expect("flush");
    store
        .append("t1", &[push("api", "late", 0..5)])
        .expect("append");
    drop(store);
    let store = Store::open(c).await.expect("reopen");
    assert_eq!(
        scan_all(&store, vec![], TimeRange::all(), None).await.len(),
        2005
    );
}

#[tokio::test]
async fn blocks_without_metadata_skip_the_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(config(dir.path())).await.expect("open");
    let entries = (0..100)
        .map(|t| LogEntry::new(t, format!("plain {t}")))
        .collect();
    store
        .append(
            "t1",
            &[PushStream {
                labels: labels("api", "p1"),
                entries,
            }],
        )
        .expect("append");
    store.flush().await.expect("flush");
    let got = scan_all(&store, vec![], TimeRange::new(10, 20), None).await;
    assert_eq!(got.len(), 10);
    assert_eq!(
        got[&(labels("api", "p1").to_string(), 12)],
        ("plain 12".to_string(), vec![])
    );
}

#[tokio::test]
async fn maintain_flushes_when_head_is_too_large() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = config(dir.path());
    c.head_max_bytes = 1000;
    let store = Store::open(c).await.expect("open");
    store
        .append("t1", &[push("api", "p1", 0..5)])
        .expect("append");
    assert!(!store.flush_due());
    store.maintain().await.expect("maintain");
    assert_eq!(store.metrics().flushes, 0);
    store
        .append("t1", &[push("api", "p1", 5..100)])
        .expect("append");
    assert!(store.flush_due());
    store.maintain().await.expect("maintain");
    let m = store.metrics();
    assert_eq!((m.flushes, m.blocks, m.head_entries), (1, 1, 0));
    assert_eq!(
        scan_all(&store, vec![], TimeRange::all(), None).await.len(),
        100
    );
}
