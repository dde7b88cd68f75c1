//! Example plugin `rename`: tidies names so that dashboards and searches see one spelling.
//!
//! ```json
//! {
//!   "attributes": {"userId": "user.id", "http.method": "http.request.method"},
//!   "services": {"legacy-billing": "billing"},
//!   "lowercase_services": true,
//!   "normalize_paths": true,
//!   "path_placeholder": "{id}"
//! }
//! ```
//!
//! - `attributes` renames attribute keys in every attribute list (spans, events, links,
//!   resources, scopes; top level only). Renames happen at once (`a → b, b → c` turns `a` into
//!   `b` and `b` into `c`); when the new key is already present, the renamed attribute wins and
//!   the other is removed.
//! - `services` renames services by exact name, then `lowercase_services` lowercases them.
//! - `normalize_paths` rewrites the URL path in operation names (from the first `/` up to `?`,
//!   `#` or a space) so that identifiers do not make every request its own operation: a path
//!   segment that is all digits, a UUID, or 16 or more hex digits with at least one digit becomes
//!   `path_placeholder` (default `{id}`): `GET /users/123` → `GET /users/{id}`.
//!
//! At least one of them must be given. A batch with nothing to rename is handed back untouched.

use std::collections::BTreeMap;

use spoor_plugin_sdk::{Error, StringKind, StringsPlugin, StringsView};

/// The `rename` plugin.
#[derive(Debug)]
pub struct Rename {
    attributes: BTreeMap<String, String>,
    /// Bit `n` set: an old attribute name is `n` bytes long (bit 63: 63 or more).
    old_lengths: u64,
    services: BTreeMap<String, String>,
    lowercase_services: bool,
    placeholder: Option<String>,
}

/// Settings.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameConfig {
    /// Old attribute key → new key.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Old service name → new name.
    #[serde(default)]
    pub services: BTreeMap<String, String>,
    /// Lowercase every service name (after `services`).
    #[serde(default)]
    pub lowercase_services: bool,
    /// Replace identifier segments of URL paths in operation names.
    #[serde(default)]
    pub normalize_paths: bool,
    /// What an identifier segment becomes.
    #[serde(default)]
    pub path_placeholder: Option<String>,
}

fn check_map(field: &str, map: &BTreeMap<String, String>) -> Result<(), Error> {
    for (old, new) in map {
        if old.is_empty() {
            return Err(Error::invalid_config(field, "an old name is empty"));
        }
        if new.is_empty() {
            return Err(Error::invalid_config(
                &format!("{field}.{old}"),
                "the new name is empty",
            ));
        }
    }
    Ok(())
}

impl Rename {
    fn new_service(&self, service: &str) -> Option<String> {
        let renamed = self.services.get(service).map(String::as_str);
        let name = renamed.unwrap_or(service);
        if self.lowercase_services && name.bytes().any(|b| b.is_ascii_uppercase()) {
            Some(name.to_ascii_lowercase())
        } else if self.lowercase_services && name.chars().any(char::is_uppercase) {
            Some(name.to_lowercase())
        } else {
            renamed.map(str::to_owned)
        }
    }

    /// Top-level keys of one attribute list, as (string, renamed), are complete: an attribute
    /// that already had a renamed attribute's new key is removed (the renamed one wins).
    fn settle(&self, view: &mut StringsView, list: &mut Vec<(usize, bool)>) {
        if list.iter().any(|&(_, renamed)| renamed) {
            let taken: Vec<&str> = list
                .iter()
                .filter(|&&(_, renamed)| renamed)
                .filter_map(|&(i, _)| self.attributes.get(view.text(i)).map(String::as_str))
                .collect();
            let clashing: Vec<usize> = list
                .iter()
                .filter(|&&(i, renamed)| !renamed && taken.contains(&view.text(i)))
                .map(|&(i, _)| i)
                .collect();
            clashing.into_iter().for_each(|i| view.remove(i));
        }
        list.clear();
    }
}

impl StringsPlugin for Rename {
    const NAME: &'static str = "rename";
    const VERSION: &'static str = "0.2.0";
    type Config = RenameConfig;

    fn configure(c: RenameConfig) -> Result<Self, Error> {
        check_map("attributes", &c.attributes)?;
        check_map("services", &c.services)?;
        let placeholder = match (c.normalize_paths, c.path_placeholder) {
            (_, Some(p)) if p.is_empty() || p.contains('/') => {
                return Err(Error::invalid_config(
                    "path_placeholder",
                    "must be a non-empty path segment",
                ))
            }
            (false, Some(_)) => {
                return Err(Error::invalid_config(
                    "path_placeholder",
                    "needs `normalize_paths: true`",
                ))
            }
            (true, p) => Some(p.unwrap_or_else(|| "{id}".into())),
            (false, None) => None,
        };
        if c.attributes.is_empty()
            && c.services.is_empty()
            && !c.lowercase_services
            && placeholder.is_none()
        {
            return Err(Error::InvalidConfig(
                "nothing to rename: give `attributes`, `services`, `lowercase_services` or `normalize_paths`"
                    .into(),
            ));
        }
        Ok(Rename {
            old_lengths: c.attributes.keys().fold(0, |m, k| m | length_bit(k)),
            attributes: c.attributes,
            services: c.services,
            lowercase_services: c.lowercase_services,
            placeholder,
        })
    }

    fn rewrite(&mut self, view: &mut StringsView) -> Result<(), Error> {
        // The top-level keys of the attribute list being read, and the list's owner.
        let mut list: Vec<(usize, bool)> = Vec::new();
        let mut owner = None;
        for i in 0..view.len() {
            let Some(e) = view.get(i) else { continue };
            let replacement = match e.kind {
                StringKind::Service => self.new_service(e.text),
                StringKind::SpanName => self
                    .placeholder
                    .as_deref()
                    .and_then(|p| normalize_path(e.text, p)),
                StringKind::Key if !self.attributes.is_empty() => {
                    let top_level = e
                        .owner
                        .is_some_and(|o| view.kind(o) != Some(StringKind::Key));
                    if !top_level {
                        continue;
                    }
                    // Most keys have a length no old name has: no map lookup (its string
                    // comparisons are byte-wise `memcmp` calls in the guest).
                    let new = if self.old_lengths & length_bit(e.text) == 0 {
                        None
                    } else {
                        self.attributes.get(e.text).cloned()
                    };
                    let this_owner = e.owner;
                    if owner != this_owner {
                        self.settle(view, &mut list);
                        owner = this_owner;
                    }
                    list.push((i, new.is_some()));
                    new
                }
                _ => None,
            };
            if let Some(text) = replacement {
                view.replace(i, &text);
            }
        }
        self.settle(view, &mut list);
        Ok(())
    }
}

spoor_plugin_sdk::export_strings_plugin!(Rename);

fn is_identifier_segment(seg: &str) -> bool {
    let b = seg.as_bytes();
    if b.is_empty() {
        return false;
    }
    if b.iter().all(u8::is_ascii_digit) {
        return true;
    }
    let is_uuid = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    is_uuid
        || (b.len() >= 16
            && b.iter().all(u8::is_ascii_hexdigit)
            && b.iter().any(u8::is_ascii_digit))
}

/// The bit of `s`'s length in a set of lengths (63: 63 bytes or more).
fn length_bit(s: &str) -> u64 {
    1 << s.len().min(63)
}

/// `name` with identifier segments of its URL path replaced by `placeholder`, or `None` if it
/// has none.
pub fn normalize_path(name: &str, placeholder: &str) -> Option<String> {
    let start = name.find('/')?;
    let end = name[start..]
        .find(['?', '#', ' '])
        .map_or(name.len(), |e| start + e);
    let path = &name[start..end];
    if !path.split('/').any(is_identifier_segment) {
        return None;
    }
    let mut out = String::with_capacity(name.len());
    out.push_str(&name[..start]);
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(if is_identifier_segment(seg) {
            placeholder
        } else {
            seg
        });
    }
    out.push_str(&name[end..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use spoor_plugin_sdk::testing::{check_golden, run};
    use spoor_plugin_sdk::{
        AnyValue, Batch, Event, KeyValue, Plugin, Resource, Span, SpanId, Strings, TraceId,
    };
    use std::sync::Arc;

    #[test]
    fn paths() {
        let n = |s: &str| normalize_path(s, "{id}");
        assert_eq!(n("GET /users/123").as_deref(), Some("GET /users/{id}"));
        assert_eq!(
            n("/users/123/orders/7").as_deref(),
            Some("/users/{id}/orders/{id}")
        );
        assert_eq!(
            n("GET /v2/items/550e8400-e29b-41d4-a716-446655440000?page=2").as_deref(),
            Some("GET /v2/items/{id}?page=2")
        );
        assert_eq!(
            n("/blobs/9f86d081884c7d65 HTTP/1.1").as_deref(),
            Some("/blobs/{id} HTTP/1.1")
        );
        assert_eq!(n("GET /users/me"), None);
        assert_eq!(n("GET /v2/items"), None, "v2 is a word");
        assert_eq!(
            n("/deadbeefdeadbeef"),
            None,
            "hex without a digit is a word"
        );
        assert_eq!(n("SELECT 1"), None);
        assert_eq!(n("GET /users/123/").as_deref(), Some("GET /users/{id}/"));
        assert_eq!(n("GET /a?b=/1"), None, "the query string is left alone");
    }

    fn span(service: &str, name: &str, attrs: Vec<KeyValue>) -> Span {
        Span {
            trace_id: TraceId(1),
            span_id: SpanId(1),
            name: name.into(),
            attributes: attrs,
            events: vec![Event {
                attributes: vec![KeyValue::string("userId", "e")],
                ..Default::default()
            }],
            resource: Arc::new(Resource {
                service_name: service.into(),
                attributes: vec![KeyValue::string("userId", "r")],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn keys(a: &[KeyValue]) -> Vec<(&str, &str)> {
        a.iter()
            .map(|kv| (kv.key.as_str(), kv.value.as_str().unwrap_or("?")))
            .collect()
    }

    #[test]
    fn keys_of_an_old_name_s_length_are_compared_and_long_ones_too() {
        let long = "k".repeat(70);
        let s = span(
            "svc",
            "op",
            vec![
                KeyValue::string("ab", "1"), // an old name's length, not an old name
                KeyValue::string("cd", "2"),
                KeyValue::string(&long, "3"),
                KeyValue::string("k".repeat(64), "4"), // shares the 63+ length bit
            ],
        );
        let config = format!(r#"{{"attributes": {{"cd": "x", "{long}": "y"}}}}"#);
        let out = run::<Strings<Rename>>(&config, &[s]).unwrap();
        let k64 = "k".repeat(64);
        assert_eq!(
            keys(&out[0].attributes),
            [("ab", "1"), ("x", "2"), ("y", "3"), (k64.as_str(), "4")]
        );
    }

    #[test]
    fn attributes_rename_at_once_and_renamed_wins() {
        let s = span(
            "svc",
            "op",
            vec![
                KeyValue::string("a", "1"),
                KeyValue::string("b", "2"),
                KeyValue::string("c", "3"),
                KeyValue::string("userId", "u"),
            ],
        );
        let out = run::<Strings<Rename>>(
            r#"{"attributes": {"a": "b", "b": "c", "userId": "user.id"}}"#,
            &[s],
        )
        .unwrap();
        assert_eq!(
            keys(&out[0].attributes),
            [("b", "1"), ("c", "2"), ("user.id", "u")]
        );
        assert_eq!(keys(&out[0].events[0].attributes), [("user.id", "e")]);
        assert_eq!(keys(&out[0].resource.attributes), [("user.id", "r")]);
    }

    #[test]
    fn services() {
        let batch = [
            span("Legacy-Billing", "op", vec![]),
            span("API", "op", vec![]),
            span("Ünïcode", "op", vec![]),
            span("web", "op", vec![]),
        ];
        let svc = |cfg: &str| -> Vec<String> {
            run::<Strings<Rename>>(cfg, &batch)
                .unwrap()
                .iter()
                .map(|s| s.service().to_owned())
                .collect()
        };
        assert_eq!(
            svc(r#"{"services": {"Legacy-Billing": "billing"}}"#),
            ["billing", "API", "Ünïcode", "web"]
        );
        assert_eq!(
            svc(r#"{"services": {"API": "Gateway"}, "lowercase_services": true}"#),
            ["legacy-billing", "gateway", "ünïcode", "web"]
        );
    }

    #[test]
    fn untouched_when_nothing_matches() {
        let mut p = spoor_plugin_sdk::configure::<Strings<Rename>>(
            r#"{"attributes": {"x": "y"}, "normalize_paths": true}"#,
        )
        .unwrap();
        let mut b = Batch::new(vec![span("svc", "GET /users/me", vec![])]);
        p.process(&mut b).unwrap();
        assert!(!b.is_modified());
        let mut b = Batch::new(vec![span("svc", "GET /users/7", vec![])]);
        p.process(&mut b).unwrap();
        assert_eq!(b[0].name, "GET /users/{id}");
        assert_eq!(
            b[0].attributes,
            Vec::<KeyValue>::new(),
            "untouched attributes stay"
        );
        assert_eq!(b[0].resource.attributes[0].value, AnyValue::Str("r".into()));
    }

    #[test]
    fn config_errors_name_the_field() {
        let err = |c: &str| run::<Strings<Rename>>(c, &[]).unwrap_err().to_string();
        assert_eq!(
            err("{}"),
            "invalid-config: nothing to rename: give `attributes`, `services`, `lowercase_services` or `normalize_paths`"
        );
        assert_eq!(
            err(r#"{"services": {"a": "b", "c": ""}}"#),
            "invalid-config: `services.c`: the new name is empty"
        );
        assert_eq!(
            err(r#"{"attributes": {"": "b"}}"#),
            "invalid-config: `attributes`: an old name is empty"
        );
        assert_eq!(
            err(r#"{"path_placeholder": ":id"}"#),
            "invalid-config: `path_placeholder`: needs `normalize_paths: true`"
        );
        assert_eq!(
            err(r#"{"normalize_paths": true, "path_placeholder": "a/b"}"#),
            "invalid-config: `path_placeholder`: must be a non-empty path segment"
        );
        assert!(err(r#"{"lowercase_services": "yes"}"#)
            .starts_with("invalid-config: `lowercase_services`: invalid type"));
    }

    #[test]
    fn golden() {
        check_golden::<Strings<Rename>>(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden"));
    }
}
