//! Loki's index endpoints: `index/stats` (how much data a selector covers)
//! and `index/volume` / `index/volume_range` (bytes per label set, as Logs
//! Drilldown's service list and Grafana's volume panels read them).
//!
//! Both are answered from the index alone ([`Store::for_each_segment`]): one
//! stream's rows in one block, or one head chunk, with its time span, entries
//! and bytes. A segment partly inside the range counts in proportion to the
//! overlap (its entries assumed evenly spread), since a compacted segment may
//! hold hours of a stream. No line is read, so they are cheap over days.
//!
//! [`Store::for_each_segment`]: inferscope_storage::Store::for_each_segment

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use inferscope_model::{LabelMatcher, Labels, TimeRange};
use inferscope_query::{Expr, parse};
use inferscope_storage::Segment;
use serde::Serialize;

use crate::error::ApiError;
use crate::http::loki_query::{DEFAULT_QUERY_SINCE, observe, time_range};
use crate::http::params::Params;
use crate::query::response::{Success, format_value};
use crate::state::AppState;
use crate::tenant::tenant_of;

/// Default `limit` of the volume endpoints, as in Loki.
const DEFAULT_VOLUME_LIMIT: usize = 100;

/// The index routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/loki/api/v1/index/stats", get(stats).post(stats))
        .route("/loki/api/v1/index/volume", get(volume).post(volume))
        .route(
            "/loki/api/v1/index/volume_range",
            get(volume_range).post(volume_range),
        )
}

/// The matchers of `query`: a stream selector, or a log query whose
/// pipeline is ignored (the index cannot apply it).
fn index_matchers(params: &Params) -> Result<Vec<LabelMatcher>, ApiError> {
    let query = params
        .get("query")
        .ok_or_else(|| ApiError::bad_request("missing required parameter \"query\""))?;
    match parse(query).map_err(|e| ApiError::bad_request(e.to_string()))? {
        Expr::Log(selector) => Ok(selector.matchers),
        Expr::Metric(_) => Err(ApiError::bad_request(format!(
            "invalid query {query:?}: expected a stream selector such as {{app=\"aigateway\"}}"
        ))),
    }
}

/// `index/stats` answer, in Loki's field names.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
struct IndexStats {
    streams: u64,
    chunks: u64,
    entries: u64,
    bytes: u64,
}

async fn stats(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let result = (|| {
        let tenant = tenant_of(&headers, state.config.auth_enabled)?;
        let params = Params::parse(raw.as_deref(), Some(&body))?;
        let matchers = index_matchers(&params)?;
        let range = time_range(&params, DEFAULT_QUERY_SINCE)?;
        let mut out = IndexStats::default();
        let mut streams: Vec<Labels> = Vec::new();
        state
            .store
            .for_each_segment(&tenant, &matchers, range, |labels, seg| {
                let share = overlap_fraction(seg, range);
                streams.push(labels.clone());
                out.chunks += 1;
                out.entries += (seg.entries as f64 * share).round() as u64;
                out.bytes += (seg.bytes as f64 * share).round() as u64;
            });
        streams.sort();
        streams.dedup();
        out.streams = streams.len() as u64;
        Ok(Json(out).into_response())
    })();
    observe(&state, "index_stats", started, result)
}

/// A volume series' labels, sorted by name (`names` is sorted).
type SeriesKey = Vec<(String, String)>;

/// How volumes are grouped (`targetLabels`, `aggregateBy`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Aggregation {
    /// The label names volumes are aggregated into.
    names: Vec<String>,
    /// `aggregateBy=labels`: one series per label name, with an empty value.
    by_label_name: bool,
}

impl Aggregation {
    /// Loki's rules: `targetLabels` when given, else the names the selector matches on.
    fn from_params(params: &Params, matchers: &[LabelMatcher]) -> Result<Self, ApiError> {
        let mut names: Vec<String> = match params.get("targetLabels") {
            Some(list) if !list.trim().is_empty() => list
                .split(',')
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect(),
            _ => matchers.iter().map(|m| m.name.clone()).collect(),
        };
        names.sort();
        names.dedup();
        let by_label_name = match params.get("aggregateBy").unwrap_or("series") {
            "series" => false,
            "labels" => true,
            other => {
                return Err(ApiError::bad_request(format!(
                    "invalid aggregateBy {other:?}: must be \"series\" or \"labels\""
                )));
            }
        };
        Ok(Aggregation {
            names,
            by_label_name,
        })
    }

    /// The series a stream's volume counts into (none when it has none of the
    /// names). With `aggregateBy=labels` a series is one name with an empty value,
    /// which [`Labels`] cannot hold, hence plain sorted pairs.
    fn keys(&self, labels: &Labels) -> Vec<SeriesKey> {
        if self.by_label_name {
            self.names
                .iter()
                .filter(|n| labels.get(n).is_some())
                .map(|n| vec![(n.clone(), String::new())])
                .collect()
        } else {
            let pairs: SeriesKey = self
                .names
                .iter()
                .filter_map(|n| labels.get(n).map(|v| (n.clone(), v.to_string())))
                .collect();
            if pairs.is_empty() {
                Vec::new()
            } else {
                vec![pairs]
            }
        }
    }
}

/// The volume of each series, in bytes, per bucket of `buckets` (one bucket
/// for `index/volume`). A segment's bytes are shared among the buckets its
/// time span overlaps, in proportion to the overlap.
fn aggregate_volumes(
    state: &AppState,
    tenant: &str,
    matchers: &[LabelMatcher],
    range: TimeRange,
    aggregation: &Aggregation,
    buckets: &Buckets,
) -> Vec<(SeriesKey, Vec<f64>)> {
    let mut series: HashMap<SeriesKey, Vec<f64>> = HashMap::new();
    state
        .store
        .for_each_segment(tenant, matchers, range, |labels, seg| {
            for key in aggregation.keys(labels) {
                let slot = series
                    .entry(key)
                    .or_insert_with(|| vec![0.0; buckets.count]);
                buckets.spread(seg, range, slot);
            }
        });
    let mut out: Vec<(SeriesKey, Vec<f64>)> = series.into_iter().collect();
    // Largest volume first; ties by labels for a stable answer.
    out.sort_by(|a, b| {
        let (ta, tb): (f64, f64) = (a.1.iter().sum(), b.1.iter().sum());
        tb.total_cmp(&ta).then_with(|| a.0.cmp(&b.0))
    });
    out
}

/// The share of `seg` inside `range`, assuming its entries are spread evenly
/// over its time span. Compacted blocks hold hours of a stream in one segment,
/// so counting a segment whole (as Loki counts a chunk) would overstate short
/// ranges by far.
fn overlap_fraction(seg: Segment, range: TimeRange) -> f64 {
    if seg.max_ts <= seg.min_ts {
        return 1.0;
    }
    let lo = seg.min_ts.max(range.start_ns);
    let hi = seg.max_ts.min(range.end_ns);
    ((hi - lo).max(0) as f64 / (seg.max_ts - seg.min_ts) as f64).clamp(0.0, 1.0)
}

/// Evaluation times of `volume_range`: `start, start+step, …, ≤ end`; the
/// point at `t` holds the bytes of `(t - step, t]`, like `bytes_over_time`.
#[derive(Debug, Clone, Copy)]
struct Buckets {
    start_ns: i64,
    step_ns: i64,
    count: usize,
}

impl Buckets {
    fn single(range: TimeRange) -> Self {
        Buckets {
            start_ns: range.end_ns,
            step_ns: (range.end_ns - range.start_ns).max(1),
            count: 1,
        }
    }

    fn ts(&self, i: usize) -> i64 {
        self.start_ns + i as i64 * self.step_ns
    }

    /// Adds `seg`'s bytes (clipped to `range`) to the buckets it overlaps.
    fn spread(&self, seg: Segment, range: TimeRange, slot: &mut [f64]) {
        let lo = seg.min_ts.max(range.start_ns);
        let hi = seg.max_ts.min(range.end_ns);
        if self.count == 1 || seg.max_ts <= seg.min_ts {
            // A point in time, or the single `index/volume` bucket.
            let i = if self.count == 1 {
                0
            } else {
                self.bucket_of(lo)
            };
            if let Some(s) = slot.get_mut(i) {
                *s += seg.bytes as f64 * overlap_fraction(seg, range);
            }
            return;
        }
        let span = (seg.max_ts - seg.min_ts) as f64;
        let first = self.bucket_of(lo);
        let last = self.bucket_of(hi);
        for (i, s) in slot.iter_mut().enumerate().take(last + 1).skip(first) {
            let (b_lo, b_hi) = (self.ts(i) - self.step_ns, self.ts(i));
            let overlap = (hi.min(b_hi) - lo.max(b_lo)).max(0) as f64;
            *s += seg.bytes as f64 * overlap / span;
        }
    }

    /// The bucket whose window `(t - step, t]` holds `ts`, clamped to the buckets.
    fn bucket_of(&self, ts: i64) -> usize {
        let i = (ts - self.start_ns + self.step_ns - 1).div_euclid(self.step_ns);
        i.clamp(0, self.count as i64 - 1) as usize
    }
}

/// One series of a volume answer, in Prometheus' shape.
#[derive(Serialize)]
struct VectorOut {
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

#[derive(Serialize)]
struct MatrixOut {
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VolumeData<T: Serialize> {
    result_type: &'static str,
    result: Vec<T>,
}

/// Parameters shared by both volume endpoints.
struct VolumeRequest {
    tenant: String,
    params: Params,
    matchers: Vec<LabelMatcher>,
    range: TimeRange,
    aggregation: Aggregation,
    limit: usize,
}

impl VolumeRequest {
    fn parse(
        state: &AppState,
        headers: &HeaderMap,
        raw: Option<&str>,
        body: &[u8],
    ) -> Result<Self, ApiError> {
        let tenant = tenant_of(headers, state.config.auth_enabled)?;
        let params = Params::parse(raw, Some(body))?;
        let matchers = index_matchers(&params)?;
        let range = time_range(&params, DEFAULT_QUERY_SINCE)?;
        let aggregation = Aggregation::from_params(&params, &matchers)?;
        let limit = params.usize("limit")?.unwrap_or(DEFAULT_VOLUME_LIMIT);
        if limit == 0 {
            return Err(ApiError::bad_request("limit must be a positive value"));
        }
        Ok(VolumeRequest {
            tenant,
            params,
            matchers,
            range,
            aggregation,
            limit,
        })
    }

    fn volumes(&self, state: &AppState, buckets: &Buckets) -> Vec<(SeriesKey, Vec<f64>)> {
        aggregate_volumes(
            state,
            &self.tenant,
            &self.matchers,
            self.range,
            &self.aggregation,
            buckets,
        )
    }
}

async fn volume(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let result = (|| {
        let req = VolumeRequest::parse(&state, &headers, raw.as_deref(), &body)?;
        let volumes = req.volumes(&state, &Buckets::single(req.range));
        let at = req.range.end_ns as f64 / 1e9;
        let result: Vec<VectorOut> = volumes
            .into_iter()
            .take(req.limit)
            .map(|(labels, v)| VectorOut {
                metric: labels.into_iter().collect(),
                value: (at, format_value(v[0].round())),
            })
            .collect();
        Ok(Json(Success::new(VolumeData {
            result_type: "vector",
            result,
        }))
        .into_response())
    })();
    observe(&state, "index_volume", started, result)
}

async fn volume_range(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let result = (|| {
        let req = VolumeRequest::parse(&state, &headers, raw.as_deref(), &body)?;
        let range = req.range;
        let length = (range.end_ns - range.start_ns).max(0);
        let step = match req.params.duration("step")? {
            Some(step) => step,
            // Loki's default step for range queries: the range / 250, at least 1 s.
            None => Duration::from_secs((length / 1_000_000_000 / 250).max(1) as u64),
        };
        let step_ns = step.as_nanos() as i64;
        if step_ns <= 0 {
            return Err(ApiError::bad_request(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        let count = (length / step_ns + 1) as usize;
        if count > 11_000 {
            return Err(ApiError::bad_request(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            ));
        }
        let buckets = Buckets {
            start_ns: range.start_ns,
            step_ns,
            count,
        };
        let volumes = req.volumes(&state, &buckets);
        let result: Vec<MatrixOut> = volumes
            .into_iter()
            .take(req.limit)
            .map(|(labels, v)| MatrixOut {
                metric: labels.into_iter().collect(),
                values: v
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b > 0.0)
                    .map(|(i, b)| (buckets.ts(i) as f64 / 1e9, format_value(b.round())))
                    .collect(),
            })
            .collect();
        Ok(Json(Success::new(VolumeData {
            result_type: "matrix",
            result,
        }))
        .into_response())
    })();
    observe(&state, "index_volume_range", started, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(min_s: i64, max_s: i64, bytes: u64) -> Segment {
        Segment {
            min_ts: min_s * 1_000_000_000,
            max_ts: max_s * 1_000_000_000,
            entries: 1,
            bytes,
        }
    }

    #[test]
    fn a_segment_is_shared_among_buckets_by_overlap() {
        const S: i64 = 1_000_000_000;
        // Points at 0, 10, 20, 30 s; windows (t-10, t].
        let b = Buckets {
            start_ns: 0,
            step_ns: 10 * S,
            count: 4,
        };
        let range = TimeRange::new(0, 30 * S);
        let mut slot = vec![0.0; 4];
        b.spread(seg(5, 25, 400), range, &mut slot);
        assert_eq!(slot, vec![0.0, 100.0, 200.0, 100.0]);
        // A single-timestamp segment lands in the window that holds it.
        let mut slot = vec![0.0; 4];
        b.spread(seg(10, 10, 7), range, &mut slot);
        b.spread(seg(11, 11, 3), range, &mut slot);
        assert_eq!(slot, vec![0.0, 7.0, 3.0, 0.0]);
    }

    #[test]
    fn single_bucket_and_stats_count_the_share_inside_the_range() {
        const S: i64 = 1_000_000_000;
        let range = TimeRange::new(10 * S, 20 * S);
        assert_eq!(overlap_fraction(seg(0, 40, 1), range), 0.25);
        assert_eq!(overlap_fraction(seg(12, 18, 1), range), 1.0);
        assert_eq!(overlap_fraction(seg(15, 15, 1), range), 1.0);
        let mut slot = vec![0.0];
        Buckets::single(range).spread(seg(0, 40, 400), range, &mut slot);
        assert_eq!(slot, vec![100.0]);
    }

    #[test]
    fn aggregation_keys_follow_target_labels_and_aggregate_by() {
        let labels = Labels::parse(r#"{app="gw", env="prod", pod="p1"}"#).expect("labels");
        let series = Aggregation {
            names: vec!["app".into(), "env".into(), "team".into()],
            by_label_name: false,
        };
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            series.keys(&labels),
            vec![vec![pair("app", "gw"), pair("env", "prod")]]
        );
        let by_name = Aggregation {
            by_label_name: true,
            ..series
        };
        assert_eq!(
            by_name.keys(&labels),
            vec![vec![pair("app", "")], vec![pair("env", "")]]
        );
        let none = Aggregation {
            names: vec!["team".into()],
            by_label_name: false,
        };
        assert!(none.keys(&labels).is_empty());
    }
}
