//! Fuzzes the OTLP decoders and what follows them: arbitrary bytes as an OTLP
//! logs or metrics request (protobuf, and JSON when UTF-8) must never panic;
//! decoded log records go through the Loki mapping and the access-log policy,
//! decoded metrics through the metric store's conversion (delta/cumulative,
//! histograms, the GenAI derivation).
#![no_main]

use std::sync::OnceLock;

use inferscope_metrics::{GenAiDeriver, MetricStore, PricingHandle, PricingTable};
use inferscope_server::config::SamplingPolicy;
use inferscope_server::otlp::access_log::{decide, facts, kind_of};
use inferscope_server::otlp::decode::OtlpFormat;
use inferscope_server::otlp::logs::records;
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;

struct Fixture {
    _dir: tempfile::TempDir,
    store: MetricStore,
    deriver: GenAiDeriver,
    pricing: PricingTable,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = MetricStore::open(dir.path(), Default::default()).expect("store");
        let pricing = PricingTable::default_table().expect("pricing");
        Fixture {
            deriver: GenAiDeriver::new(PricingHandle::new(pricing.clone())),
            pricing,
            store,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    for format in [OtlpFormat::Protobuf, OtlpFormat::Json] {
        if let Ok(req) = format.decode::<ExportLogsServiceRequest>(None, data, 1 << 20) {
            for r in records(&req, 1) {
                let kind = kind_of(&r.attributes);
                let facts = facts(&r, kind, &f.pricing);
                let _ = decide(kind, &facts, true, &SamplingPolicy::default());
            }
        }
        if let Ok(req) = format.decode::<ExportMetricsServiceRequest>(None, data, 1 << 20) {
            let _ = f.store.ingest("fuzz", &req, Some(&f.deriver));
        }
    }
});
