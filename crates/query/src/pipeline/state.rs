//! The per-line label state a pipeline works on (Loki's `LabelsBuilder`).
//!
//! Labels live in three categories — stream, structured metadata and parsed — and a
//! lookup prefers parsed, then metadata, then stream. `__error__` and
//! `__error_details__` are parsed labels.

use std::borrow::Cow;

/// The error label.
pub const ERROR_LABEL: &str = "__error__";
/// The error details label.
pub const ERROR_DETAILS_LABEL: &str = "__error_details__";

/// Label state for one line. Stream labels and metadata are borrowed until a stage
/// changes them, so the common path allocates nothing for them.
#[derive(Debug, Clone, Default)]
pub struct State<'a> {
    /// Stream labels (sorted by name on entry).
    pub stream: Cow<'a, [(String, String)]>,
    /// Structured metadata.
    pub meta: Cow<'a, [(String, String)]>,
    /// Parsed labels in insertion order.
    pub parsed: Vec<(String, String)>,
    /// Recycled string pairs reused by [`State::set_parsed`] to avoid allocating
    /// for lines that a later filter drops.
    pub spare: Vec<(String, String)>,
}

fn find<'a>(v: &'a [(String, String)], name: &str) -> Option<&'a str> {
    v.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

impl State<'_> {
    /// Looks a label up: parsed, then structured metadata, then stream.
    pub fn get(&self, name: &str) -> Option<&str> {
        find(&self.parsed, name)
            .or_else(|| find(&self.meta, name))
            .or_else(|| find(&self.stream, name))
    }

    /// Whether a stream label of that name exists (parsers then add `_extracted`).
    pub fn stream_has(&self, name: &str) -> bool {
        self.stream.iter().any(|(k, _)| k == name)
    }

    /// Sets a parsed label (replacing an existing parsed value).
    pub fn set_parsed(&mut self, name: &str, value: &str) {
        if let Some(slot) = self.parsed.iter_mut().find(|(k, _)| k == name) {
            value.clone_into(&mut slot.1);
        } else if let Some(mut slot) = self.spare.pop() {
            slot.0.clear();
            slot.0.push_str(name);
            slot.1.clear();
            slot.1.push_str(value);
            self.parsed.push(slot);
        } else {
            self.parsed.push((name.to_string(), value.to_string()));
        }
    }

    /// Sets a parsed label extracted by a parser: renamed with `_extracted` when it
    /// collides with a stream label.
    pub fn set_extracted(&mut self, name: &str, value: &str) {
        if self.stream_has(name) {
            let n = format!("{name}_extracted");
            self.set_parsed(&n, value);
        } else {
            self.set_parsed(name, value);
        }
    }

    /// Sets a label, keeping it in the category where it already lives.
    pub fn set_any(&mut self, name: &str, value: String) {
        if let Some(slot) = self.parsed.iter_mut().find(|(k, _)| k == name) {
            slot.1 = value;
        } else if let Some(i) = self.meta.iter().position(|(k, _)| k == name) {
            self.meta.to_mut()[i].1 = value;
        } else if let Some(i) = self.stream.iter().position(|(k, _)| k == name) {
            self.stream.to_mut()[i].1 = value;
        } else {
            self.parsed.push((name.to_string(), value));
        }
    }

    /// Removes a label from every category.
    pub fn delete(&mut self, name: &str) {
        self.parsed.retain(|(k, _)| k != name);
        if self.meta.iter().any(|(k, _)| k == name) {
            self.meta.to_mut().retain(|(k, _)| k != name);
        }
        if self.stream.iter().any(|(k, _)| k == name) {
            self.stream.to_mut().retain(|(k, _)| k != name);
        }
    }

    /// Whether `__error__` is set.
    pub fn has_err(&self) -> bool {
        self.parsed.iter().any(|(k, _)| k == ERROR_LABEL)
    }

    /// Keeps only the labels for which `keep` is true, in every category.
    pub fn retain(&mut self, keep: impl Fn(&(String, String)) -> bool) {
        self.parsed.retain(&keep);
        if !self.meta.iter().all(&keep) {
            self.meta.to_mut().retain(&keep);
        }
        if !self.stream.iter().all(&keep) {
            self.stream.to_mut().retain(&keep);
        }
    }

    /// Sets `__error__` and `__error_details__`.
    pub fn set_error(&mut self, err: &str, details: &str) {
        self.set_parsed(ERROR_LABEL, err);
        if !details.is_empty() {
            self.set_parsed(ERROR_DETAILS_LABEL, details);
        }
    }
}
