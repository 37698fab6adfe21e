//! docs/operations.md is the one home of the log, error and metric tables;
//! these tests hold those tables to the code's own declarations (the access
//! log's fields, the typed rules and error kinds, the metrics a running
//! registry renders), in both directions. The configuration table is held
//! to the variables' declarations by the config module's own test.

use std::collections::BTreeSet;

use nova_guard::error::ErrorKind;
use nova_guard::exchange::{Exchange, Peer, Protocol, Rule, ValidationInfo, Verdict};
use nova_guard::log::access::FIELDS;
use nova_guard::metrics::{Build, Metrics};
use nova_guard::nova;

const GUIDE: &str = include_str!("../docs/operations.md");

/// The section of the guide under `heading` (a `## ` line), to the next one.
fn section(heading: &str) -> &'static str {
    let start = GUIDE
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("no section {heading:?} in the guide"));
    let rest = &GUIDE[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    &rest[..end]
}

/// The names in the first column of a section's table rows (`| `name` |`).
fn first_column(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` |"))
        .map(|(name, _)| name.to_owned())
        .collect()
}

fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_log_table_is_the_access_line_s_fields() {
    let documented = first_column(section("Logs"));
    let mut emitted: BTreeSet<String> = FIELDS.iter().map(|f| f.to_string()).collect();
    emitted.extend(["timestamp", "level", "message", "target"].map(String::from));
    let missing: Vec<_> = emitted.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&emitted).collect();
    assert!(
        missing.is_empty(),
        "fields the log table lacks: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "fields documented but never written: {extra:?}"
    );
}

#[test]
fn every_rule_is_in_the_rule_row() {
    let logs = section("Logs");
    let row = logs
        .lines()
        .find(|l| l.starts_with("| `rule` |"))
        .expect("no rule row in the log table");
    let rules = Rule::proxy_rules().chain(nova::Rule::ALL.map(Rule::Check));
    for rule in rules {
        assert!(
            row.contains(&format!("`{}`", rule.as_str())),
            "rule {} is not in the rule row",
            rule.as_str()
        );
    }
}

#[test]
fn every_error_kind_and_its_message_is_documented() {
    let guide = flat(GUIDE);
    for kind in ErrorKind::ALL {
        assert!(
            guide.contains(&format!("`{}`", kind.as_str())),
            "error kind {} is not in the guide",
            kind.as_str()
        );
        assert!(
            guide.contains(kind.message()),
            "the message of {}, {:?}, is not in the guide",
            kind.as_str(),
            kind.message()
        );
    }
}

#[test]
fn the_metric_table_is_what_metrics_renders() {
    let metrics = Metrics::new(Build {
        version: "0",
        commit: "x",
        mode: "enforce",
        log_lines_dropped: || 0,
    });
    // One of each kind of exchange, so that every family has a series.
    let peer = Peer::new(
        "127.0.0.1:1".parse().unwrap(),
        "127.0.0.1:2".parse().unwrap(),
        false,
    );
    for verdict in [Verdict::Rejected, Verdict::Reported] {
        let mut x = Exchange::new(peer, Protocol::Http11);
        x.validation = ValidationInfo {
            verdict,
            rule: Some(Rule::MaxBodyBytes),
            ..ValidationInfo::passthrough()
        };
        x.status = 413;
        metrics.observe(&x, std::time::Duration::ZERO);
    }
    let mut failed = Exchange::new(peer, Protocol::Http11);
    failed.upstream.error = Some(ErrorKind::UpstreamConnect);
    failed.upstream.duration = Some(std::time::Duration::from_millis(1));
    metrics.observe(&failed, std::time::Duration::ZERO);
    metrics.connection_refused();
    let rendered: BTreeSet<String> = metrics
        .render()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    let documented = first_column(
        section("Health checks and metrics")
            .split("Metrics on `/metrics`")
            .nth(1)
            .expect("no metric table"),
    );
    let missing: Vec<_> = rendered.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&rendered).collect();
    assert!(missing.is_empty(), "metrics the table lacks: {missing:?}");
    assert!(
        extra.is_empty(),
        "metrics documented but never rendered: {extra:?}"
    );
}

#[test]
fn example_log_lines_parse_and_use_documented_fields() {
    let mut fields: BTreeSet<&str> = FIELDS.iter().copied().collect();
    fields.extend(["timestamp", "level", "message", "target"]);
    let mut verdicts = BTreeSet::new();
    let mut with_error = false;
    for block in GUIDE.split("```json\n").skip(1) {
        let text = block.split("```").next().unwrap_or_default();
        let event: serde_json::Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("an example in the guide is not JSON ({e}): {text}"));
        for key in event.as_object().expect("an object").keys() {
            assert!(
                fields.contains(key.as_str()),
                "example field {key} is not a log field"
            );
        }
        if let Some(v) = event["verdict"].as_str() {
            verdicts.insert(v.to_owned());
        }
        with_error |= event.get("error").is_some();
    }
    assert!(
        verdicts.contains("forwarded") && verdicts.contains("rejected"),
        "{verdicts:?}"
    );
    assert!(with_error, "no example shows an upstream error");
}
