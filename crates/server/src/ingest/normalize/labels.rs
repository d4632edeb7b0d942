//! The stream-label side of normalization: Loki's `service_name` discovery,
//! the Kubernetes label mapping, and Loki's sanitizing of label names.

use inferscope_model::Labels;

/// The label Loki adds to every stream (`discover_service_name`).
pub const SERVICE_NAME: &str = "service_name";

/// Loki's value when none of the listed labels is present.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// A label name as Loki makes one of an attribute name (its OTLP rule):
/// every character outside `[a-zA-Z0-9_]` becomes `_`, and a name starting
/// with a digit is prefixed with `key_`. Valid names are returned unchanged.
pub fn sanitize_label_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    }
    out
}

/// The `service_name` Loki would add to `labels`: `None` when the stream has
/// one already or discovery is off (`labels_to_try` empty); else the value of
/// the first label of `labels_to_try` present, or `unknown_service`.
pub fn discover_service_name(labels: &Labels, labels_to_try: &[String]) -> Option<String> {
    if labels_to_try.is_empty() || labels.get(SERVICE_NAME).is_some() {
        return None;
    }
    let found = labels_to_try
        .iter()
        .find_map(|name| labels.get(name).filter(|v| !v.is_empty()));
    Some(found.unwrap_or(UNKNOWN_SERVICE).to_string())
}

/// The labels `mapping` (source → target, sources already sanitized) adds to
/// `labels`: a target absent from the stream takes its source's value; the
/// source is kept, so queries by either name work. The first source present
/// wins when several map to one target.
pub fn kubernetes_labels(labels: &Labels, mapping: &[(String, String)]) -> Vec<(String, String)> {
    let mut added: Vec<(String, String)> = Vec::new();
    for (source, target) in mapping {
        if labels.get(target).is_some() || added.iter().any(|(t, _)| t == target) {
            continue;
        }
        if let Some(value) = labels.get(source) {
            added.push((target.clone(), value.to_string()));
        }
    }
    added
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_SERVICE_NAME_LABELS;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn sanitizes_like_loki() {
        assert_eq!(
            sanitize_label_name("app.kubernetes.io/name"),
            "app_kubernetes_io_name"
        );
        assert_eq!(
            sanitize_label_name("nvidia.com/dynamo-component-type"),
            "nvidia_com_dynamo_component_type"
        );
        assert_eq!(sanitize_label_name("2xx"), "key_2xx");
        assert_eq!(sanitize_label_name("already_ok"), "already_ok");
        assert_eq!(sanitize_label_name("héllo"), "h_llo");
    }

    #[test]
    fn service_name_from_lokis_list() {
        let list: Vec<String> = DEFAULT_SERVICE_NAME_LABELS.map(String::from).to_vec();
        let cases = [
            (vec![("app", "gw"), ("job", "x")], Some("gw")),
            (vec![("service", "s"), ("app", "gw")], Some("s")),
            (
                vec![("app_kubernetes_io_name", "dyn"), ("container", "c")],
                Some("dyn"),
            ),
            (vec![("job", "ns/j")], Some("ns/j")),
            (vec![("namespace", "prod")], Some("unknown_service")),
            (vec![("service_name", "given"), ("app", "gw")], None),
        ];
        for (pairs, want) in cases {
            assert_eq!(
                discover_service_name(&labels(&pairs), &list).as_deref(),
                want,
                "{pairs:?}"
            );
        }
        assert_eq!(discover_service_name(&labels(&[("app", "x")]), &[]), None);
    }

    #[test]
    fn kubernetes_mapping_adds_missing_targets_only() {
        let mapping = vec![
            ("app_kubernetes_io_name".to_string(), "app".to_string()),
            (
                "nvidia_com_dynamo_component_type".to_string(),
                "component".to_string(),
            ),
            (
                "app_kubernetes_io_component".to_string(),
                "component".to_string(),
            ),
        ];
        let l = labels(&[
            ("app_kubernetes_io_name", "frontend"),
            ("nvidia_com_dynamo_component_type", "worker"),
            ("app_kubernetes_io_component", "other"),
        ]);
        assert_eq!(
            kubernetes_labels(&l, &mapping),
            vec![
                ("app".to_string(), "frontend".to_string()),
                ("component".to_string(), "worker".to_string())
            ]
        );
        let has_app = labels(&[("app", "mine"), ("app_kubernetes_io_name", "frontend")]);
        assert!(kubernetes_labels(&has_app, &mapping).is_empty());
    }
}
