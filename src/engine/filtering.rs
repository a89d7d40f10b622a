//! Basic sync rules, as the connectors framework applies them (PROTOCOL.md §6 "Sync rules"):
//! [`RuleEngine`] decides per document whether it is indexed, [`validate_rules`] checks a
//! draft rule list, and [`validate_draft`] turns a whole draft (rules and advanced snippet)
//! into the `FilteringValidation` a service writes before activating it. Pure functions over
//! rules and document fields; no I/O, and nothing here knows where documents come from or go.

use crate::model::{
    Features, FilteringRule, FilteringRules, FilteringValidation, FilteringValidationError,
    FilteringValidationState, RulePolicy, RuleType, Timestamp,
};
use crate::sources::Fields;
use regex::Regex;
use serde_json::Value;
use std::cmp::Ordering;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RuleError {
    #[error("sync rule '{id}': '{value}' is not a valid regular expression: {reason}")]
    InvalidRegex {
        id: String,
        value: String,
        reason: String,
    },
}

/// Active basic rules, ready to apply: DEFAULT dropped, sorted by order, regexes compiled.
#[derive(Debug, Clone, Default)]
pub struct RuleEngine {
    rules: Vec<CompiledRule>,
}

#[derive(Debug, Clone)]
struct CompiledRule {
    policy: RulePolicy,
    field: String,
    /// The rule is on `_timestamp`: it reads the document's stamp when it has one.
    on_timestamp: bool,
    rule: RuleType,
    value: String,
    regex: Option<Regex>,
}

impl RuleEngine {
    /// Fails on a regex that does not compile, naming the rule: such a rule list should not
    /// have been activated, and guessing would index the wrong documents.
    pub fn new(rules: &[FilteringRule]) -> Result<Self, RuleError> {
        let mut active: Vec<&FilteringRule> = rules.iter().filter(|r| !r.is_default()).collect();
        // A stable sort keeps the given order among rules of equal `order`.
        active.sort_by_key(|r| r.order);
        let rules = active.into_iter().map(compile).collect::<Result<_, _>>()?;
        Ok(Self { rules })
    }

    /// True when no rule but DEFAULT exists: every document is indexed.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first matching rule decides; no match means the document is indexed.
    pub fn should_index(&self, fields: &Fields) -> bool {
        self.should_index_stamped(fields, None)
    }

    /// [`Self::should_index`] for a document whose source keeps its `_timestamp` beside the
    /// fields (`Document::timestamp`): a rule on `_timestamp` reads that stamp, which is what
    /// the engine indexes as `_timestamp` (a field of that name is then left out of the
    /// body); the field is read only for a document without a stamp.
    pub fn should_index_stamped(&self, fields: &Fields, timestamp: Option<&str>) -> bool {
        self.rules
            .iter()
            .find(|rule| rule.matches(fields, timestamp))
            .is_none_or(|rule| rule.policy == RulePolicy::Include)
    }
}

fn compile(rule: &FilteringRule) -> Result<CompiledRule, RuleError> {
    let regex = match rule.rule {
        RuleType::Regex => {
            Some(
                anchored_regex(&rule.value).map_err(|e| RuleError::InvalidRegex {
                    id: rule.id.clone(),
                    value: rule.value.clone(),
                    reason: e.to_string(),
                })?,
            )
        }
        _ => None,
    };
    Ok(CompiledRule {
        policy: rule.policy,
        on_timestamp: rule.field == TIMESTAMP_FIELD,
        field: rule.field.clone(),
        rule: rule.rule,
        value: rule.value.clone(),
        regex,
    })
}

// Python's `re.match`: anchored at the start, free at the end.
fn anchored_regex(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})"))
}

impl CompiledRule {
    fn matches(&self, fields: &Fields, timestamp: Option<&str>) -> bool {
        let stamp;
        let doc_value = match timestamp.filter(|_| self.on_timestamp) {
            Some(ts) => {
                stamp = Value::String(ts.to_string());
                &stamp
            }
            None => match lookup(fields, &self.field) {
                Some(value) => value,
                None => return false,
            },
        };
        match self.rule {
            RuleType::StartsWith => string_form(doc_value).starts_with(&self.value),
            RuleType::EndsWith => string_form(doc_value).ends_with(&self.value),
            RuleType::Contains => string_form(doc_value).contains(&self.value),
            RuleType::Regex => self
                .regex
                .as_ref()
                .is_some_and(|re| re.is_match(&string_form(doc_value))),
            RuleType::Equals => compare(doc_value, &self.value) == Some(Ordering::Equal),
            RuleType::LessThan => compare(doc_value, &self.value) == Some(Ordering::Less),
            RuleType::GreaterThan => compare(doc_value, &self.value) == Some(Ordering::Greater),
        }
    }
}

/// The field a document's `Document::timestamp` is written as.
const TIMESTAMP_FIELD: &str = "_timestamp";

/// The value at `field`: a top-level key first (keys may contain dots), then a dotted path
/// into nested objects (`author.name`). Null counts as absent.
fn lookup<'a>(fields: &'a Fields, field: &str) -> Option<&'a Value> {
    if let Some(value) = fields.get(field) {
        return (!value.is_null()).then_some(value);
    }
    let mut parts = field.split('.');
    let mut current = fields.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    (!current.is_null()).then_some(current)
}

fn string_form(value: &Value) -> std::borrow::Cow<'_, str> {
    match value {
        Value::String(s) => s.as_str().into(),
        other => other.to_string().into(),
    }
}

/// The document value against the rule value converted to the document value's type.
/// `None` when the rule value cannot be converted: such a rule does not match.
fn compare(doc_value: &Value, rule_value: &str) -> Option<Ordering> {
    match doc_value {
        Value::Number(n) => {
            let rule_number: f64 = rule_value.trim().parse().ok()?;
            n.as_f64()?.partial_cmp(&rule_number)
        }
        Value::Bool(b) => Some(b.cmp(&parse_bool(rule_value)?)),
        Value::String(s) => Some(compare_strings(s, rule_value)),
        other => Some(other.to_string().as_str().cmp(rule_value)),
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

// Two dates (ISO-8601, with or without time) compare as instants; anything else as text.
fn compare_strings(doc_value: &str, rule_value: &str) -> Ordering {
    match (parse_date(doc_value), parse_date(rule_value)) {
        (Some(a), Some(b)) => a.cmp(&b),
        _ => doc_value.cmp(rule_value),
    }
}

fn parse_date(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    // Only date-shaped text: a number is not a date here, though Timestamp reads epoch millis.
    let shaped = text.len() >= 10 && text.as_bytes()[4] == b'-' && text.as_bytes()[7] == b'-';
    if !shaped {
        return None;
    }
    if let Some(t) = Timestamp::parse(text) {
        return Some(t);
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    date.and_hms_opt(0, 0, 0).map(|t| Timestamp(t.and_utc()))
}

// Regexes that match everything: only DEFAULT may be one, as in the framework.
const MATCH_ALL_REGEXES: [&str; 6] = [".*", "(.*)", "^.*", "^(.*)", ".*$", "^.*$"];

/// The id the framework gives errors about the advanced snippet.
pub const ADVANCED_SNIPPET_ID: &str = "advanced_snippet";

/// Whether the connector's sync rules feature is on, as the framework reads it: basic or
/// advanced rules (`sync_rules.{basic,advanced}.enabled`, or the legacy `filtering_rules` /
/// `filtering_advanced_config` flags). Absent `features` count as on: the framework's
/// prepare step writes the source's features, where basic rules are on, before it ever
/// validates a draft, and syncdeck writes none.
pub fn sync_rules_enabled(features: Option<&Features>) -> bool {
    let Some(features) = features else {
        return true;
    };
    let nested = |kind: &str| {
        features
            .sync_rules
            .as_ref()
            .and_then(|r| r.get(kind))
            .and_then(|k| k.get("enabled"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let legacy = |key: &str| {
        features
            .extra
            .get(key)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    nested("basic")
        || nested("advanced")
        || legacy("filtering_rules")
        || legacy("filtering_advanced_config")
}

/// Validates a draft before activation, as the framework's `FilteringValidator` does: every
/// basic rule ([`validate_rules`], plus the DEFAULT rule's place), then the advanced snippet,
/// when there is one, through `advanced` (the source's own check; its messages become one
/// error with the id `advanced_snippet`). `valid` with no errors, or `invalid` with them.
pub fn validate_draft(
    draft: &FilteringRules,
    advanced: impl FnOnce(&Value) -> Vec<String>,
) -> FilteringValidation {
    let mut errors = validate_rules(&draft.rules);
    errors.extend(default_rule_problem(&draft.rules));
    if has_advanced_rules(&draft.advanced_snippet.value) {
        let messages = advanced(&draft.advanced_snippet.value);
        if !messages.is_empty() {
            errors.push(FilteringValidationError {
                ids: vec![ADVANCED_SNIPPET_ID.to_string()],
                messages,
            });
        }
    }
    let state = if errors.is_empty() {
        FilteringValidationState::Valid
    } else {
        FilteringValidationState::Invalid
    };
    FilteringValidation { state, errors }
}

// The framework's `has_advanced_rules`: a snippet value that is neither null nor empty.
fn has_advanced_rules(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

// Elasticsearch keeps the catch-all rule last with the highest order (PROTOCOL §6); a list
// where it sits elsewhere was written around `_filtering`, and Kibana would show rules after
// it that look shadowed but do apply.
fn default_rule_problem(rules: &[FilteringRule]) -> Option<FilteringValidationError> {
    let position = rules.iter().position(FilteringRule::is_default)?;
    let default = &rules[position];
    let last = position + 1 == rules.len();
    let highest = rules
        .iter()
        .filter(|r| !r.is_default())
        .all(|r| r.order < default.order);
    if last && highest {
        return None;
    }
    Some(rule_error(
        vec![default.id.clone()],
        format!(
            "Rule '{}': the catch-all rule must be the last rule, with the highest order.",
            default.id
        ),
    ))
}

/// Problems with a draft rule list, empty when it may be activated. Each error names the ids
/// of the rules concerned.
pub fn validate_rules(rules: &[FilteringRule]) -> Vec<FilteringValidationError> {
    let custom: Vec<&FilteringRule> = rules.iter().filter(|r| !r.is_default()).collect();
    let mut errors: Vec<FilteringValidationError> =
        custom.iter().filter_map(|r| rule_problem(r)).collect();
    errors.extend(duplicates(&custom));
    errors
}

fn rule_error(ids: Vec<String>, message: String) -> FilteringValidationError {
    FilteringValidationError {
        ids,
        messages: vec![message],
    }
}

fn rule_problem(rule: &FilteringRule) -> Option<FilteringValidationError> {
    let id = &rule.id;
    let error = |message: String| Some(rule_error(vec![id.clone()], message));
    if id.trim().is_empty() {
        return error(format!(
            "A rule on field '{}' has no id; every rule needs one.",
            rule.field
        ));
    }
    if rule.field.trim().is_empty() {
        return error(format!("Rule '{id}': the field is missing."));
    }
    if rule.value.is_empty() {
        return error(format!("Rule '{id}': the value is missing."));
    }
    if rule.rule != RuleType::Regex {
        return None;
    }
    if MATCH_ALL_REGEXES.contains(&rule.value.trim()) {
        return error(format!(
            "Rule '{id}': the regex '{}' matches everything; only the DEFAULT rule may.",
            rule.value
        ));
    }
    match anchored_regex(&rule.value) {
        Ok(_) => None,
        Err(e) => error(format!(
            "Rule '{id}': '{}' is not a valid regular expression: {e}",
            rule.value
        )),
    }
}

// Two rules with the same field, rule type and value are duplicates, whatever their policies:
// the first would always decide and the second never apply.
fn duplicates(rules: &[&FilteringRule]) -> Vec<FilteringValidationError> {
    let mut errors = Vec::new();
    for (i, a) in rules.iter().enumerate() {
        for b in &rules[i + 1..] {
            if a.field == b.field && a.rule == b.rule && a.value == b.value {
                errors.push(rule_error(
                    vec![a.id.clone(), b.id.clone()],
                    format!(
                        "Rules '{}' and '{}' are duplicates: same field, rule and value.",
                        a.id, b.id
                    ),
                ));
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(
        id: &str,
        policy: RulePolicy,
        field: &str,
        kind: RuleType,
        value: &str,
        order: i64,
    ) -> FilteringRule {
        FilteringRule {
            id: id.into(),
            policy,
            field: field.into(),
            rule: kind,
            value: value.into(),
            order,
            created_at: None,
            updated_at: None,
        }
    }

    fn exclude(field: &str, kind: RuleType, value: &str) -> RuleEngine {
        RuleEngine::new(&[
            rule("r", RulePolicy::Exclude, field, kind, value, 1),
            FilteringRule::default_rule(),
        ])
        .unwrap()
    }

    fn doc(value: Value) -> Fields {
        Fields::from(value.as_object().cloned().unwrap())
    }

    #[test]
    fn a_rule_on_timestamp_sees_the_stamp_kept_beside_the_fields() {
        let engine = exclude("_timestamp", RuleType::LessThan, "2024-06-01T00:00:00Z");
        let d = doc(json!({"title": "t"}));
        assert!(!engine.should_index_stamped(&d, Some("2024-01-01T00:00:00.000Z")));
        assert!(engine.should_index_stamped(&d, Some("2025-01-01T00:00:00.000Z")));
        assert!(engine.should_index_stamped(&d, None));
        assert!(engine.should_index(&d));
        // The stamp is what gets indexed as `_timestamp`: it wins over a field of that name,
        // which counts only for a document without a stamp.
        let stamped = doc(json!({"_timestamp": "2025-01-01T00:00:00Z"}));
        assert!(!engine.should_index_stamped(&stamped, Some("2024-01-01T00:00:00.000Z")));
        assert!(engine.should_index_stamped(&stamped, None));
        let old = doc(json!({"_timestamp": "2023-01-01T00:00:00Z"}));
        assert!(!engine.should_index_stamped(&old, None));
        // Other rules do not see the stamp.
        let other = exclude("modified", RuleType::LessThan, "2024-06-01T00:00:00Z");
        assert!(other.should_index_stamped(&d, Some("2024-01-01T00:00:00.000Z")));
    }

    #[test]
    fn no_rules_or_only_default_indexes_everything() {
        assert!(
            RuleEngine::new(&[])
                .unwrap()
                .should_index(&doc(json!({"a": 1})))
        );
        let engine = RuleEngine::new(&[FilteringRule::default_rule()]).unwrap();
        assert!(engine.is_empty());
        assert!(engine.should_index(&doc(json!({}))));
    }

    #[test]
    fn string_rules_use_the_string_form() {
        let d = doc(json!({"title": "Quarterly report", "n": 1234, "flag": true}));
        assert!(!exclude("title", RuleType::StartsWith, "Quarter").should_index(&d));
        assert!(exclude("title", RuleType::StartsWith, "report").should_index(&d));
        assert!(!exclude("title", RuleType::EndsWith, "report").should_index(&d));
        assert!(!exclude("title", RuleType::Contains, "ly re").should_index(&d));
        assert!(exclude("title", RuleType::Contains, "memo").should_index(&d));
        assert!(!exclude("n", RuleType::StartsWith, "12").should_index(&d));
        assert!(!exclude("flag", RuleType::Equals, "TRUE").should_index(&d));
    }

    #[test]
    fn regex_is_anchored_at_the_start_only() {
        let d = doc(json!({"path": "docs/guide/intro.md"}));
        assert!(
            !exclude("path", RuleType::Regex, "docs/").should_index(&d),
            "prefix match"
        );
        assert!(!exclude("path", RuleType::Regex, r"docs/.*\.md").should_index(&d));
        assert!(
            exclude("path", RuleType::Regex, "guide").should_index(&d),
            "not anchored in the middle"
        );
        assert!(
            exclude("path", RuleType::Regex, "a|guide").should_index(&d),
            "the anchor covers alternations"
        );
    }

    #[test]
    fn equals_and_comparisons_convert_to_the_document_type() {
        let d = doc(
            json!({"n": 10, "price": 2.5, "ok": false, "when": "2024-03-01T12:00:00Z", "day": "2024-03-01", "s": "b"}),
        );
        assert!(!exclude("n", RuleType::Equals, "10").should_index(&d));
        assert!(
            !exclude("n", RuleType::Equals, "10.0").should_index(&d),
            "numbers compare as numbers"
        );
        assert!(!exclude("n", RuleType::GreaterThan, "9").should_index(&d));
        assert!(exclude("n", RuleType::GreaterThan, "10").should_index(&d));
        assert!(
            !exclude("n", RuleType::LessThan, "100").should_index(&d),
            "100 is not less than 10 as text, but is as a number"
        );
        assert!(!exclude("price", RuleType::LessThan, "3").should_index(&d));
        assert!(
            exclude("n", RuleType::Equals, "ten").should_index(&d),
            "an unconvertible value never matches"
        );
        assert!(!exclude("ok", RuleType::Equals, "false").should_index(&d));
        assert!(!exclude("ok", RuleType::LessThan, "true").should_index(&d));
        assert!(!exclude("when", RuleType::GreaterThan, "2024-02-28").should_index(&d));
        assert!(
            !exclude("when", RuleType::Equals, "2024-03-01T13:00:00+01:00").should_index(&d),
            "dates compare as instants"
        );
        assert!(!exclude("day", RuleType::LessThan, "2024-03-01T00:00:01Z").should_index(&d));
        assert!(!exclude("s", RuleType::LessThan, "c").should_index(&d));
        assert!(exclude("s", RuleType::GreaterThan, "c").should_index(&d));
    }

    #[test]
    fn missing_or_null_fields_never_match() {
        let engine = RuleEngine::new(&[
            rule("a", RulePolicy::Include, "x", RuleType::Regex, ".*", 1),
            rule("b", RulePolicy::Exclude, "y", RuleType::Contains, "z", 2),
        ])
        .unwrap();
        assert!(
            engine.should_index(&doc(json!({"x": null, "other": "z"}))),
            "no rule matched: indexed"
        );
        assert!(!engine.should_index(&doc(json!({"y": "zz"}))));
    }

    #[test]
    fn dotted_fields_reach_into_nested_objects() {
        let d =
            doc(json!({"author": {"name": "Ada", "address": {"city": "London"}}, "a.b": "flat"}));
        assert!(!exclude("author.name", RuleType::Equals, "Ada").should_index(&d));
        assert!(!exclude("author.address.city", RuleType::StartsWith, "Lon").should_index(&d));
        assert!(
            !exclude("a.b", RuleType::Equals, "flat").should_index(&d),
            "a literal dotted key wins"
        );
        assert!(exclude("author.missing", RuleType::Equals, "x").should_index(&d));
        assert!(exclude("author.name.first", RuleType::Equals, "x").should_index(&d));
    }

    #[test]
    fn the_first_matching_rule_by_order_decides() {
        let rules = [
            FilteringRule {
                order: 99,
                ..FilteringRule::default_rule()
            },
            rule(
                "exclude-drafts",
                RulePolicy::Exclude,
                "status",
                RuleType::Equals,
                "draft",
                2,
            ),
            rule(
                "include-team",
                RulePolicy::Include,
                "team",
                RuleType::Equals,
                "search",
                1,
            ),
            rule(
                "exclude-rest",
                RulePolicy::Exclude,
                "team",
                RuleType::Regex,
                ".+",
                3,
            ),
        ];
        let engine = RuleEngine::new(&rules).unwrap();
        assert!(
            engine.should_index(&doc(json!({"team": "search", "status": "draft"}))),
            "order 1 wins over order 2"
        );
        assert!(!engine.should_index(&doc(json!({"team": "infra", "status": "draft"}))));
        assert!(!engine.should_index(&doc(json!({"team": "infra"}))));
        assert!(engine.should_index(&doc(json!({"status": "final"}))));
    }

    #[test]
    fn an_invalid_active_regex_is_an_error_naming_the_rule() {
        let err = RuleEngine::new(&[rule(
            "bad",
            RulePolicy::Include,
            "f",
            RuleType::Regex,
            "(",
            1,
        )])
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("sync rule 'bad': '(' is not a valid regular expression"),
            "{err}"
        );
    }

    #[test]
    fn validation_accepts_good_rules_and_the_default() {
        let rules = [
            rule("a", RulePolicy::Include, "f", RuleType::Regex, "abc.*", 1),
            rule("b", RulePolicy::Exclude, "f", RuleType::Equals, "x", 2),
            FilteringRule::default_rule(),
        ];
        assert_eq!(validate_rules(&rules), vec![]);
    }

    #[test]
    fn validation_rejects_bad_rules_naming_them() {
        let rules = [
            rule("all", RulePolicy::Include, "f", RuleType::Regex, ".*", 1),
            rule(
                "nofield",
                RulePolicy::Include,
                " ",
                RuleType::Equals,
                "x",
                2,
            ),
            rule("novalue", RulePolicy::Include, "f", RuleType::Equals, "", 3),
            rule("badre", RulePolicy::Include, "f", RuleType::Regex, "[", 4),
            rule("one", RulePolicy::Include, "g", RuleType::Contains, "v", 5),
            rule("two", RulePolicy::Exclude, "g", RuleType::Contains, "v", 6),
            FilteringRule::default_rule(),
        ];
        let errors = validate_rules(&rules);
        let ids: Vec<Vec<String>> = errors.iter().map(|e| e.ids.clone()).collect();
        assert_eq!(
            ids,
            [
                vec!["all"],
                vec!["nofield"],
                vec!["novalue"],
                vec!["badre"],
                vec!["one", "two"]
            ]
        );
        assert!(errors[0].messages[0].contains("matches everything"));
        assert!(errors[1].messages[0].contains("field is missing"));
        assert!(errors[2].messages[0].contains("value is missing"));
        assert!(errors[3].messages[0].contains("not a valid regular expression"));
        assert!(errors[4].messages[0].contains("duplicates"));
    }

    fn draft(rules: Vec<FilteringRule>, snippet: Value) -> FilteringRules {
        FilteringRules {
            rules,
            advanced_snippet: crate::model::AdvancedSnippet {
                value: snippet,
                ..Default::default()
            },
            validation: FilteringValidation {
                state: FilteringValidationState::Edited,
                errors: Vec::new(),
            },
        }
    }

    fn default_at(order: i64) -> FilteringRule {
        FilteringRule {
            order,
            ..FilteringRule::default_rule()
        }
    }

    fn no_advanced_check(_: &Value) -> Vec<String> {
        panic!("the advanced check must not run without a snippet")
    }

    #[test]
    fn a_good_draft_is_valid_without_asking_the_source() {
        let rules = vec![
            rule("a", RulePolicy::Include, "f", RuleType::Regex, "abc.*", 1),
            rule(
                "b",
                RulePolicy::Exclude,
                "n",
                RuleType::LessThan,
                "2024-01-01",
                2,
            ),
            default_at(3),
        ];
        for empty in [json!({}), Value::Null] {
            let validation = validate_draft(&draft(rules.clone(), empty), no_advanced_check);
            assert_eq!(
                validation,
                FilteringValidation {
                    state: FilteringValidationState::Valid,
                    errors: vec![]
                }
            );
        }
    }

    #[test]
    fn a_bad_regex_makes_the_draft_invalid_naming_the_rule() {
        let rules = vec![
            rule("ok", RulePolicy::Include, "f", RuleType::Equals, "x", 1),
            rule(
                "broken",
                RulePolicy::Exclude,
                "path",
                RuleType::Regex,
                "docs/(",
                2,
            ),
            default_at(3),
        ];
        let validation = validate_draft(&draft(rules, json!({})), no_advanced_check);
        assert_eq!(validation.state, FilteringValidationState::Invalid);
        assert_eq!(validation.errors.len(), 1, "{validation:?}");
        assert_eq!(validation.errors[0].ids, ["broken"]);
        let message = &validation.errors[0].messages[0];
        assert!(
            message.starts_with("Rule 'broken': 'docs/(' is not a valid regular expression"),
            "{message}"
        );
    }

    #[test]
    fn the_source_judges_the_advanced_snippet() {
        let snippet = json!({"query": {"match_all": {}}});
        let mut seen = None;
        let validation = validate_draft(&draft(vec![default_at(0)], snippet.clone()), |v| {
            seen = Some(v.clone());
            vec!["no queries here".into(), "really".into()]
        });
        assert_eq!(seen, Some(snippet));
        assert_eq!(validation.state, FilteringValidationState::Invalid);
        assert_eq!(
            validation.errors,
            [FilteringValidationError {
                ids: vec![ADVANCED_SNIPPET_ID.into()],
                messages: vec!["no queries here".into(), "really".into()],
            }]
        );
        let accepted = validate_draft(&draft(vec![], json!([{"q": 1}])), |_| Vec::new());
        assert_eq!(accepted.state, FilteringValidationState::Valid);
    }

    #[test]
    fn the_default_rule_must_come_last_with_the_highest_order() {
        let a = rule("a", RulePolicy::Include, "f", RuleType::Equals, "x", 5);
        for rules in [
            vec![default_at(9), a.clone()],
            vec![a.clone(), default_at(5)],
        ] {
            let validation = validate_draft(&draft(rules, json!({})), no_advanced_check);
            assert_eq!(validation.state, FilteringValidationState::Invalid);
            assert_eq!(validation.errors[0].ids, ["DEFAULT"], "{validation:?}");
            assert!(validation.errors[0].messages[0].contains("must be the last rule"));
        }
        let without_default = validate_draft(&draft(vec![a], json!({})), no_advanced_check);
        assert_eq!(without_default.state, FilteringValidationState::Valid);
    }

    #[test]
    fn a_rule_without_an_id_is_invalid() {
        let rules = [rule(
            "",
            RulePolicy::Include,
            "title",
            RuleType::Equals,
            "x",
            1,
        )];
        let errors = validate_rules(&rules);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].messages[0].contains("on field 'title' has no id"));
    }

    #[test]
    fn sync_rules_are_enabled_by_basic_advanced_or_legacy_flags() {
        let features = |v: Value| serde_json::from_value::<Features>(v).unwrap();
        assert!(
            sync_rules_enabled(None),
            "no features written: the source default"
        );
        let off = features(
            json!({"sync_rules": {"basic": {"enabled": false}, "advanced": {"enabled": false}}}),
        );
        assert!(!sync_rules_enabled(Some(&off)));
        assert!(!sync_rules_enabled(Some(&features(json!({})))));
        for on in [
            json!({"sync_rules": {"basic": {"enabled": true}, "advanced": {"enabled": false}}}),
            json!({"sync_rules": {"advanced": {"enabled": true}}}),
            json!({"filtering_rules": true}),
            json!({"filtering_advanced_config": true}),
        ] {
            assert!(sync_rules_enabled(Some(&features(on.clone()))), "{on}");
        }
    }
}
