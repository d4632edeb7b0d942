//! Loki's response JSON, serialized straight from query results (no
//! intermediate `serde_json::Value` tree for large results).
//!
//! ```text
//! {"status":"success","data":{"resultType":"streams","result":[
//!    {"stream":{"app":"x"},"values":[["<ns>","line"], ...]}], "stats":{...}}}
//! ```
//! With categorize-labels, values carry a third element
//! `{"structuredMetadata":{..},"parsed":{..}}` and `data.encodingFlags` is set.

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq};

use super::log_query::{QueryStats, ResultEntry, ResultStream};
use inferscope_model::Labels;

/// `{"status":"success","data":…}`.
#[derive(Serialize)]
pub struct Success<T: Serialize> {
    status: &'static str,
    data: T,
}

impl<T: Serialize> Success<T> {
    /// Wraps `data`.
    pub fn new(data: T) -> Self {
        Success {
            status: "success",
            data,
        }
    }
}

/// The data of a log query.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamsData<'a> {
    result_type: &'static str,
    result: Vec<StreamOut<'a>>,
    stats: StatsOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    encoding_flags: Option<[&'static str; 1]>,
}

impl<'a> StreamsData<'a> {
    /// Builds the data block.
    pub fn new(streams: &'a [ResultStream], stats: &QueryStats, categorized: bool) -> Self {
        StreamsData {
            result_type: "streams",
            result: streams
                .iter()
                .map(|s| StreamOut {
                    stream: LabelsOut(&s.labels),
                    values: ValuesOut(&s.entries, categorized),
                })
                .collect(),
            stats: StatsOut::from(stats),
            encoding_flags: categorized.then_some(["categorize-labels"]),
        }
    }
}

#[derive(Serialize)]
struct StreamOut<'a> {
    stream: LabelsOut<'a>,
    values: ValuesOut<'a>,
}

/// A label set as a JSON object.
pub struct LabelsOut<'a>(pub &'a Labels);

impl Serialize for LabelsOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

struct PairsOut<'a>(&'a [(String, String)]);

impl Serialize for PairsOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

struct ValuesOut<'a>(&'a [ResultEntry], bool);

impl Serialize for ValuesOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for e in self.0 {
            if self.1 {
                #[derive(Serialize)]
                #[serde(rename_all = "camelCase")]
                struct Categories<'a> {
                    #[serde(skip_serializing_if = "is_empty")]
                    structured_metadata: PairsOut<'a>,
                    #[serde(skip_serializing_if = "is_empty")]
                    parsed: PairsOut<'a>,
                }
                fn is_empty(p: &PairsOut<'_>) -> bool {
                    p.0.is_empty()
                }
                let cats = Categories {
                    structured_metadata: PairsOut(&e.structured_metadata),
                    parsed: PairsOut(&e.parsed),
                };
                seq.serialize_element(&(e.timestamp_ns.to_string(), &e.line, cats))?;
            } else {
                seq.serialize_element(&(e.timestamp_ns.to_string(), &e.line))?;
            }
        }
        seq.end()
    }
}

/// The `stats` block, in the parts of Loki's shape that mean something here.
#[derive(Serialize)]
pub struct StatsOut {
    summary: Summary,
    querier: Querier,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    bytes_processed_per_second: u64,
    lines_processed_per_second: u64,
    total_bytes_processed: u64,
    total_lines_processed: u64,
    exec_time: f64,
    queue_time: f64,
    subqueries: u64,
    total_entries_returned: u64,
    splits: u64,
    shards: u64,
    total_post_filter_lines: u64,
}

#[derive(Serialize)]
struct Querier {
    store: StoreStats,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StoreStats {
    total_chunks_ref: u64,
    total_chunks_downloaded: u64,
    chunk: ChunkStats,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChunkStats {
    decompressed_bytes: u64,
    decompressed_lines: u64,
    post_filter_lines: u64,
}

impl From<&QueryStats> for StatsOut {
    fn from(s: &QueryStats) -> Self {
        let secs = s.exec_seconds.max(1e-9);
        StatsOut {
            summary: Summary {
                bytes_processed_per_second: (s.bytes_scanned as f64 / secs) as u64,
                lines_processed_per_second: (s.lines_scanned as f64 / secs) as u64,
                total_bytes_processed: s.bytes_scanned,
                total_lines_processed: s.lines_scanned,
                exec_time: s.exec_seconds,
                queue_time: 0.0,
                subqueries: 0,
                total_entries_returned: s.entries_returned,
                splits: s.tasks_run,
                shards: 0,
                total_post_filter_lines: s.lines_post_filter,
            },
            querier: Querier {
                store: StoreStats {
                    total_chunks_ref: s.tasks_run + s.tasks_skipped,
                    total_chunks_downloaded: s.tasks_run,
                    chunk: ChunkStats {
                        decompressed_bytes: s.bytes_scanned,
                        decompressed_lines: s.lines_scanned,
                        post_filter_lines: s.lines_post_filter,
                    },
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_shape_matches_loki() {
        let streams = vec![ResultStream {
            labels: Labels::from_pairs([("app", "x")]),
            entries: vec![ResultEntry {
                timestamp_ns: 5,
                line: "hello \"you\"".into(),
                structured_metadata: vec![("trace_id".into(), "t1".into())],
                parsed: vec![],
            }],
        }];
        let stats = QueryStats::default();
        let plain = serde_json::to_value(Success::new(StreamsData::new(&streams, &stats, false)))
            .expect("json");
        assert_eq!(plain["status"], "success");
        assert_eq!(plain["data"]["resultType"], "streams");
        assert_eq!(plain["data"]["result"][0]["stream"]["app"], "x");
        assert_eq!(
            plain["data"]["result"][0]["values"][0],
            serde_json::json!(["5", "hello \"you\""])
        );
        assert!(plain["data"]["stats"]["summary"]["totalBytesProcessed"].is_u64());
        assert!(plain["data"].get("encodingFlags").is_none());

        let cat = serde_json::to_value(Success::new(StreamsData::new(&streams, &stats, true)))
            .expect("json");
        assert_eq!(
            cat["data"]["result"][0]["values"][0],
            serde_json::json!(["5", "hello \"you\"", {"structuredMetadata": {"trace_id": "t1"}}])
        );
        assert_eq!(
            cat["data"]["encodingFlags"],
            serde_json::json!(["categorize-labels"])
        );
    }
}

/// The data of a metric query: `vector`, `matrix` or `scalar`, as Loki
/// (and Prometheus) shape them: times as float seconds, values as strings.
pub struct MetricData<'a> {
    /// The engine's result.
    pub value: &'a inferscope_query::engine::Value,
    /// Execution statistics.
    pub stats: StatsOut,
}

/// Formats a sample value the way Prometheus does (`NaN`, `+Inf`, `-Inf`).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
}

/// `[<seconds>, "<value>"]`.
struct PointOut(inferscope_query::engine::Sample);

impl Serialize for PointOut {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let seconds = self.0.timestamp_ns as f64 / 1e9;
        (seconds, format_value(self.0.value)).serialize(s)
    }
}

impl Serialize for MetricData<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use inferscope_query::engine::Value;
        let mut map = s.serialize_map(Some(3))?;
        match self.value {
            Value::Vector(samples) => {
                #[derive(Serialize)]
                struct Out<'a> {
                    metric: LabelsOut<'a>,
                    value: PointOut,
                }
                map.serialize_entry("resultType", "vector")?;
                let out: Vec<Out<'_>> = samples
                    .iter()
                    .map(|v| Out {
                        metric: LabelsOut(&v.labels),
                        value: PointOut(v.sample),
                    })
                    .collect();
                map.serialize_entry("result", &out)?;
            }
            Value::Matrix(series) => {
                #[derive(Serialize)]
                struct Out<'a> {
                    metric: LabelsOut<'a>,
                    values: Vec<PointOut>,
                }
                map.serialize_entry("resultType", "matrix")?;
                let out: Vec<Out<'_>> = series
                    .iter()
                    .map(|s| Out {
                        metric: LabelsOut(&s.labels),
                        values: s.samples.iter().copied().map(PointOut).collect(),
                    })
                    .collect();
                map.serialize_entry("result", &out)?;
            }
            Value::Scalar(sample) => {
                map.serialize_entry("resultType", "scalar")?;
                map.serialize_entry("result", &PointOut(*sample))?;
            }
        }
        map.serialize_entry("stats", &self.stats)?;
        map.end()
    }
}

#[cfg(test)]
mod metric_tests {
    use inferscope_query::engine::{Sample, Series, Value, VectorSample};

    use super::*;

    #[test]
    fn metric_shapes_match_loki() {
        let stats = || StatsOut::from(&QueryStats::default());
        let labels = Labels::from_pairs([("app", "x")]);
        let vector = Value::Vector(vec![VectorSample {
            labels: labels.clone(),
            sample: Sample {
                timestamp_ns: 1_700_000_000_500_000_000,
                value: 2.0,
            },
        }]);
        let v = serde_json::to_value(Success::new(MetricData {
            value: &vector,
            stats: stats(),
        }))
        .expect("json");
        assert_eq!(v["data"]["resultType"], "vector");
        assert_eq!(v["data"]["result"][0]["metric"]["app"], "x");
        assert_eq!(
            v["data"]["result"][0]["value"],
            serde_json::json!([1_700_000_000.5, "2"])
        );

        let matrix = Value::Matrix(vec![Series {
            labels,
            samples: vec![
                Sample {
                    timestamp_ns: 1_000_000_000,
                    value: f64::NAN,
                },
                Sample {
                    timestamp_ns: 2_000_000_000,
                    value: 0.25,
                },
            ],
        }]);
        let m = serde_json::to_value(Success::new(MetricData {
            value: &matrix,
            stats: stats(),
        }))
        .expect("json");
        assert_eq!(m["data"]["resultType"], "matrix");
        assert_eq!(
            m["data"]["result"][0]["values"],
            serde_json::json!([[1.0, "NaN"], [2.0, "0.25"]])
        );

        let scalar = Value::Scalar(Sample {
            timestamp_ns: 3_000_000_000,
            value: f64::INFINITY,
        });
        let s = serde_json::to_value(Success::new(MetricData {
            value: &scalar,
            stats: stats(),
        }))
        .expect("json");
        assert_eq!(
            s["data"],
            serde_json::json!({"resultType": "scalar", "result": [3.0, "+Inf"], "stats": s["data"]["stats"].clone()})
        );
    }
}
