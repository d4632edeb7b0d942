//! Log deletion through the store: hidden at once from heads and blocks,
//! durable across reopen, applied physically after the cancel period,
//! cancellable before.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use inferscope_model::{LabelMatcher, Labels, LogEntry, MatchOp, PushStream, TimeRange};
use inferscope_storage::{
    CancelOutcome, DeleteCompiler, DeleteConfig, DeleteSelector, DeleteStatus, LineFilter,
    ScanRequest, Store, StoreConfig, WalSync,
};

/// A stand-in for the server's LogQL compiler: `{app="X"}` optionally
/// followed by `|= "text"`.
#[derive(Debug)]
struct TinyCompiler;

struct Contains(String);
impl LineFilter for Contains {
    fn keep(&self, line: &[u8]) -> bool {
        memchr::memmem::find(line, self.0.as_bytes()).is_some()
    }
}

impl DeleteCompiler for TinyCompiler {
    fn compile(&self, query: &str) -> Result<DeleteSelector, String> {
        let rest = query
            .strip_prefix("{app=\"")
            .ok_or_else(|| format!("bad query {query:?}"))?;
        let (app, rest) = rest.split_once("\"}").ok_or("unterminated selector")?;
        let line_filter = match rest.trim() {
            "" => None,
            f => {
                let text = f
                    .strip_prefix("|= \"")
                    .and_then(|t| t.strip_suffix('"'))
                    .ok_or_else(|| format!("bad filter {f:?}"))?;
                Some(Arc::new(Contains(text.to_string())) as Arc<dyn LineFilter>)
            }
        };
        Ok(DeleteSelector {
            matchers: vec![LabelMatcher::new("app", MatchOp::Eq, app).map_err(|e| e.to_string())?],
            line_filter,
        })
    }
}

fn labels(app: &str) -> Labels {
    Labels::from_pairs([("app", app)])
}

/// Lines `"<app> line <t>"`, with ` secret` on every 5th.
fn push(app: &str, ts: std::ops::Range<i64>) -> PushStream {
    PushStream {
        labels: labels(app),
        entries: ts
            .map(|t| {
                let secret = if t % 5 == 0 { " secret" } else { "" };
                LogEntry::new(t, format!("{app} line {t}{secret}"))
            })
            .collect(),
    }
}

fn config(dir: &std::path::Path, cancel_period: Duration) -> StoreConfig {
    let mut c = StoreConfig::local(dir).expect("config");
    c.wal_sync = WalSync::Never;
    c.deletes = DeleteConfig {
        compiler: Some(Arc::new(TinyCompiler)),
        cancel_period,
    };
    c
}

const DAY: Duration = Duration::from_secs(86_400);

/// (app, ts) → line of everything visible to a scan of tenant t1.
async fn visible(store: &Store) -> BTreeMap<(String, i64), String> {
    let tasks = store
        .scan(&ScanRequest {
            tenant: "t1".into(),
            matchers: vec![],
            range: TimeRange::all(),
            line_filter: None,
            id_hint: None,
        })
        .await
        .expect("scan");
    let mut out = BTreeMap::new();
    for t in &tasks {
        t.run(&mut |l, e| {
            let app = l.get("app").unwrap_or_default().to_string();
            out.insert((app, e.timestamp_ns), e.line.to_string());
        })
        .expect("run");
    }
    out
}

/// What should remain after deleting `app` in `[start, end]` (lines with
/// `filter` only, if given).
fn expected_without(
    all: &BTreeMap<(String, i64), String>,
    app: &str,
    start: i64,
    end: i64,
    filter: Option<&str>,
) -> BTreeMap<(String, i64), String> {
    all.iter()
        .filter(|((a, ts), line)| {
            !(a == app && *ts >= start && *ts <= end && filter.is_none_or(|f| line.contains(f)))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// api 0..100 and web 0..100 in two blocks, api 100..150 in the head.
async fn fill(store: &Store) {
    store
        .append("t1", &[push("api", 0..50), push("web", 0..100)])
        .expect("append");
    store.flush().await.expect("flush");
    store.append("t1", &[push("api", 50..100)]).expect("append");
    store.flush().await.expect("flush");
    store
        .append("t1", &[push("api", 100..150)])
        .expect("append");
    store
        .append("t2", &[push("api", 0..150)])
        .expect("other tenant");
}

#[tokio::test]
async fn delete_hides_head_and_block_entries_at_once_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let all;
    let want;
    {
        let store = Store::open(config(dir.path(), DAY)).await.expect("open");
        fill(&store).await;
        all = visible(&store).await;
        assert_eq!(all.len(), 250);
        // Straddles the two blocks and the head; both ends inclusive.
        let req = store
            .add_delete("t1", r#"{app="api"}"#, 40, 120)
            .await
            .expect("add");
        assert_eq!(req.status, DeleteStatus::Received);
        want = expected_without(&all, "api", 40, 120, None);
        assert_eq!(want.len(), 250 - 81);
        assert_eq!(visible(&store).await, want);
        assert_eq!(store.delete_requests("t1"), vec![req.clone()]);
        assert!(store.delete_requests("t2").is_empty());
        // Within the cancel period, maintenance removes nothing.
        store.maintain().await.expect("maintain");
        assert_eq!(store.delete_metrics().deleted_lines, 0);
        assert_eq!(
            store.delete_requests("t1")[0].status,
            DeleteStatus::Received
        );
        // Line-level: a label-only query is not affected by other tenants.
        assert_eq!(store.metrics().blocks, 2);
    }
    // Reopen: the request and the head (replayed from the WAL) come back.
    let store = Store::open(config(dir.path(), DAY)).await.expect("reopen");
    assert_eq!(visible(&store).await, want);
    assert_eq!(store.delete_requests("t1").len(), 1);
    // The other tenant keeps everything.
    let tasks = store
        .scan(&ScanRequest {
            tenant: "t2".into(),
            matchers: vec![],
            range: TimeRange::all(),
            line_filter: None,
            id_hint: None,
        })
        .await
        .expect("scan");
    let mut n = 0;
    for t in &tasks {
        t.run(&mut |_, _| n += 1).expect("run");
    }
    assert_eq!(n, 150);
}

#[tokio::test]
async fn cancel_before_processing_restores_visibility() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(config(dir.path(), DAY)).await.expect("open");
    fill(&store).await;
    let all = visible(&store).await;
    let req = store
        .add_delete("t1", r#"{app="web"}"#, 0, 1000)
        .await
        .expect("add");
    assert_eq!(visible(&store).await.len(), 150);
    assert_eq!(
        store.cancel_delete("t1", "nope").await.expect("cancel"),
        CancelOutcome::NotFound
    );
    assert_eq!(
        store
            .cancel_delete("t2", &req.request_id)
            .await
            .expect("cancel"),
        CancelOutcome::NotFound
    );
    assert_eq!(
        store
            .cancel_delete("t1", &req.request_id)
            .await
            .expect("cancel"),
        CancelOutcome::Cancelled
    );
    assert_eq!(visible(&store).await, all);
    assert!(store.delete_requests("t1").is_empty());
    drop(store);
    let store = Store::open(config(dir.path(), DAY)).await.expect("reopen");
    assert_eq!(visible(&store).await, all);
    assert!(store.delete_requests("t1").is_empty());
}

#[tokio::test]
async fn processing_after_cancel_period_rewrites_blocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(config(dir.path(), Duration::ZERO))
        .await
        .expect("open");
    fill(&store).await;
    let all = visible(&store).await;
    let blocks_before = store.metrics().blocks;
    let req = store
        .add_delete("t1", r#"{app="api"}"#, 40, 120)
        .await
        .expect("add");
    let want = expected_without(&all, "api", 40, 120, None);
    assert_eq!(visible(&store).await, want);

    store.maintain().await.expect("maintain");
    let listed = store.delete_requests("t1");
    assert_eq!(listed[0].status, DeleteStatus::Processed);
    assert!(listed[0].processed_at_ns.is_some());
    // Both blocks held api entries in range: 10 + 50 removed from them; the
    // second held nothing else and is gone.
    let m = store.delete_metrics();
    assert_eq!(m.deleted_lines, 60);
    assert_eq!((m.requests_processed, m.requests_pending), (1, 0));
    assert_eq!(store.metrics().blocks, blocks_before - 1);
    assert_eq!(visible(&store).await, want);
    // Processed: no longer cancellable.
    assert_eq!(
        store
            .cancel_delete("t1", &req.request_id)
            .await
            .expect("cancel"),
        CancelOutcome::AlreadyProcessing
    );
    // The head's entries are dropped when it is flushed.
    store.flush().await.expect("flush");
    assert_eq!(store.delete_metrics().deleted_lines, 60 + 21);
    assert_eq!(visible(&store).await, want);
    // Late entries in the deleted range stay hidden, and are dropped at flush.
    store.append("t1", &[push("api", 60..62)]).expect("late");
    assert_eq!(visible(&store).await, want);
    store.flush().await.expect("flush");
    assert_eq!(store.delete_metrics().deleted_lines, 60 + 21 + 2);
    drop(store);

    // The entries are physically gone: a store that knows no delete request
    // (its files removed) still does not see them.
    std::fs::remove_dir_all(dir.path().join("blocks/tenants/t1/deletes")).expect("rm");
    let store = Store::open(config(dir.path(), Duration::ZERO))
        .await
        .expect("reopen");
    assert!(store.delete_requests("t1").is_empty());
    assert_eq!(visible(&store).await, want);
}

#[tokio::test]
async fn line_filter_deletes_only_matching_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(config(dir.path(), Duration::from_secs(3600)))
        .await
        .expect("open");
    fill(&store).await;
    let all = visible(&store).await;
    store
        .add_delete("t1", r#"{app="api"} |= "secret""#, 0, 200)
        .await
        .expect("add");
    let want = expected_without(&all, "api", 0, 200, Some("secret"));
    assert_eq!(want.len(), 250 - 30);
    assert_eq!(visible(&store).await, want);
    drop(store);

    // Reopened with no cancel period: processed, only the secret lines go.
    let store = Store::open(config(dir.path(), Duration::ZERO))
        .await
        .expect("reopen");
    assert_eq!(visible(&store).await, want);
    store.maintain().await.expect("maintain");
    assert_eq!(
        store.delete_requests("t1")[0].status,
        DeleteStatus::Processed
    );
    assert_eq!(store.delete_metrics().deleted_lines, 20);
    store.flush().await.expect("flush");
    assert_eq!(store.delete_metrics().deleted_lines, 30);
    assert_eq!(visible(&store).await, want);
}

#[tokio::test]
async fn compaction_keeps_entries_of_cancellable_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = config(dir.path(), DAY);
    c.compaction_min_blocks = 2;
    let store = Store::open(c).await.expect("open");
    fill(&store).await;
    let all = visible(&store).await;
    let req = store
        .add_delete("t1", r#"{app="api"}"#, 0, 1000)
        .await
        .expect("add");
    store.maintain().await.expect("maintain");
    assert_eq!(store.metrics().compactions, 1);
    assert_eq!(store.delete_metrics().deleted_lines, 0);
    assert_eq!(visible(&store).await.len(), 100);
    store
        .cancel_delete("t1", &req.request_id)
        .await
        .expect("cancel");
    assert_eq!(visible(&store).await, all);
}

#[tokio::test]
async fn a_block_emptied_by_a_delete_leaves_the_manifest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(config(dir.path(), Duration::ZERO))
        .await
        .expect("open");
    store.append("t1", &[push("api", 0..10)]).expect("append");
    store.flush().await.expect("flush");
    store.append("t1", &[push("web", 0..10)]).expect("append");
    store.flush().await.expect("flush");
    assert_eq!(store.metrics().blocks, 2);
    store
        .add_delete("t1", r#"{app="api"}"#, 0, 10)
        .await
        .expect("add");
    store.process_deletes().await.expect("process");
    assert_eq!(store.metrics().blocks, 1);
    assert_eq!(visible(&store).await.len(), 10);
    assert_eq!(
        store
            .label_values("t1", "app", TimeRange::all(), &[])
            .await
            .expect("values"),
        vec!["web"]
    );
}

#[tokio::test]
async fn bad_queries_are_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(config(dir.path(), DAY)).await.expect("open");
    assert!(store.add_delete("t1", "nonsense", 0, 10).await.is_err());
    assert!(
        store
            .add_delete("t1", r#"{app="api"}"#, 10, 0)
            .await
            .is_err()
    );
    assert!(store.delete_requests("t1").is_empty());
    // Without a compiler, nothing can be added.
    let other = tempfile::tempdir().expect("tempdir");
    let mut c = config(other.path(), DAY);
    c.deletes.compiler = None;
    let store = Store::open(c).await.expect("open");
    assert!(
        store
            .add_delete("t1", r#"{app="api"}"#, 0, 10)
            .await
            .is_err()
    );
}
