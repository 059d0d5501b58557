//! What one binding records ([`Selection`]: metrics and attributes, from its `telemetry`),
//! checked and turned into labels.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::catalog::{self, MetricDef, Source};
use crate::registry::MAX_DIMENSIONS;
use crate::values::ValueTable;

/// Labels every series has; an attribute may not take their names.
const RESERVED: [&str; 3] = ["namespace", "binding", "le"];

/// A binding's `telemetry`: the metrics it records and the attributes that label them.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// The metrics recorded (duplicates are ignored).
    pub metrics: Vec<&'static MetricDef>,
    /// Labels added to the binding's series.
    pub attributes: Vec<Attribute>,
}

/// One attribute: `NAME: VALUE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    /// The attribute's name; its label is this with every character other than a letter, a
    /// digit or `_` made `_` (`service.name` → `service_name`).
    pub name: String,
    /// A fixed value, or a source the binding supplies with each record.
    pub value: AttributeValue,
}

/// An attribute's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttributeValue {
    /// The same on every series of the binding.
    Literal(String),
    /// `${SOURCE}`: taken from each record, on the metrics that supply `SOURCE`.
    Source(&'static Source),
}

impl AttributeValue {
    /// `${SOURCE}` (the whole value) or a literal.
    pub fn parse(text: &str) -> Result<Self, SelectionError> {
        let Some(at) = text.find("${") else {
            return Ok(AttributeValue::Literal(text.to_owned()));
        };
        let inner = text
            .strip_prefix("${")
            .and_then(|rest| rest.strip_suffix('}'))
            .filter(|inner| at == 0 && !inner.contains(['{', '}']))
            .ok_or_else(|| SelectionError::Expression(text.to_owned()))?;
        let name = inner.trim();
        catalog::source(name)
            .map(AttributeValue::Source)
            .ok_or_else(|| SelectionError::UnknownSource(name.to_owned()))
    }
}

/// Why a selection cannot be recorded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// An attribute name that is not a label name even with its other characters made `_`.
    #[error("attribute '{0}' cannot be a label: it must start with a letter or '_'")]
    InvalidLabel(String),
    /// An attribute that would replace a label every series has.
    #[error("attribute label '{0}' is reserved")]
    ReservedLabel(String),
    /// Two labels of one series with the same name.
    #[error("label '{0}' is given twice")]
    DuplicateLabel(String),
    /// `${NAME}` naming no source.
    #[error("unknown source '${{{0}}}'")]
    UnknownSource(String),
    /// `${` anywhere but around the whole value.
    #[error("'{0}': an attribute is a literal or one '${{SOURCE}}' as its whole value")]
    Expression(String),
    /// More labels from requests on one metric than [`MAX_DIMENSIONS`].
    #[error("metric '{metric}' would have {count} labels from requests (at most {MAX_DIMENSIONS})")]
    TooManyDimensions {
        /// The metric.
        metric: &'static str,
        /// Its labels from requests.
        count: usize,
    },
}

/// The Prometheus label for an attribute named `name`.
pub fn label_name(name: &str) -> Result<String, SelectionError> {
    let label: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' => c,
            _ => '_',
        })
        .collect();
    if label.is_empty() || label.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(SelectionError::InvalidLabel(name.to_owned()));
    }
    if RESERVED.contains(&label.as_str()) || label.starts_with("__") {
        return Err(SelectionError::ReservedLabel(label));
    }
    Ok(label)
}

/// A label taken from each record of a metric.
pub(crate) struct Dimension {
    /// Which of the metric's sources gives the value.
    pub(crate) source: usize,
    /// The label's name.
    pub(crate) label: String,
    /// The binding's values of that source.
    pub(crate) table: Arc<Mutex<ValueTable>>,
}

/// A checked selection.
pub(crate) struct Resolved {
    metrics: Vec<&'static MetricDef>,
    literals: Vec<(String, String)>,
    /// `${SOURCE}` attributes: label and source.
    from_requests: Vec<(String, &'static Source)>,
    /// One table per source some metric takes a label from.
    tables: HashMap<&'static str, Arc<Mutex<ValueTable>>>,
}

impl Selection {
    /// Checks the labels against each other and the registry's `constant` ones.
    pub(crate) fn resolve(self, constant: &[(String, String)]) -> Result<Resolved, SelectionError> {
        let mut metrics: Vec<&'static MetricDef> = Vec::with_capacity(self.metrics.len());
        for metric in self.metrics {
            if !metrics.iter().any(|m| m.name == metric.name) {
                metrics.push(metric);
            }
        }
        let mut taken: Vec<String> = constant.iter().map(|(l, _)| l.clone()).collect();
        let mut literals = Vec::new();
        let mut from_requests = Vec::new();
        for attribute in self.attributes {
            let label = label_name(&attribute.name)?;
            if taken.contains(&label) {
                return Err(SelectionError::DuplicateLabel(label));
            }
            taken.push(label.clone());
            match attribute.value {
                AttributeValue::Literal(value) => literals.push((label, value)),
                AttributeValue::Source(source) => from_requests.push((label, source)),
            }
        }
        let mut resolved = Resolved {
            metrics,
            literals,
            from_requests,
            tables: HashMap::new(),
        };
        for metric in resolved.metrics.clone() {
            let labels = resolved.labels_of(metric);
            if labels.len() > MAX_DIMENSIONS {
                return Err(SelectionError::TooManyDimensions {
                    metric: metric.name,
                    count: labels.len(),
                });
            }
            for (index, label) in &labels {
                let fixed = metric.sources[*index].label.is_some();
                if fixed && taken.iter().any(|t| t == label) {
                    return Err(SelectionError::DuplicateLabel(label.clone()));
                }
                let source = &metric.sources[*index];
                resolved
                    .tables
                    .entry(source.name)
                    .or_insert_with(|| Arc::new(Mutex::new(ValueTable::new(source.cap))));
            }
        }
        Ok(resolved)
    }
}

/// What makes a binding's series the same across a configuration reload: its literal
/// labels, and which label each source of requests gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Signature {
    literals: Vec<(String, String)>,
    from_requests: Vec<(String, &'static str)>,
}

/// A binding's value tables, by source.
pub(crate) type Tables = HashMap<&'static str, Arc<Mutex<ValueTable>>>;

impl Resolved {
    /// What identifies the binding's series besides its name.
    pub(crate) fn signature(&self) -> Signature {
        Signature {
            literals: self.literals.clone(),
            from_requests: self
                .from_requests
                .iter()
                .map(|(label, source)| (label.clone(), source.name))
                .collect(),
        }
    }

    /// The value tables, to be shared with the binding's next build.
    pub(crate) fn tables(&self) -> &Tables {
        &self.tables
    }

    /// Takes over `previous`'s tables for the sources both record: a value keeps its id, so
    /// the series of a rebuilt binding are the ones it had.
    pub(crate) fn adopt(&mut self, previous: &Tables) {
        for (source, table) in &mut self.tables {
            if let Some(kept) = previous.get(source) {
                *table = kept.clone();
            }
        }
    }

    /// Whether any metric is recorded.
    pub(crate) fn records_any(&self) -> bool {
        !self.metrics.is_empty()
    }

    /// Whether `metric` is recorded.
    pub(crate) fn records(&self, metric: &MetricDef) -> bool {
        self.metrics.iter().any(|m| m.name == metric.name)
    }

    /// The literal attributes, as labels.
    pub(crate) fn literal_labels(&self) -> Vec<(String, String)> {
        self.literals.clone()
    }

    /// `metric`'s labels from requests: the source index and the label, its own labels first.
    fn labels_of(&self, metric: &MetricDef) -> Vec<(usize, String)> {
        let fixed = metric
            .sources
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.label.map(|l| (i, l.to_owned())));
        let configured = self.from_requests.iter().filter_map(|(label, source)| {
            let index = metric.sources.iter().position(|s| s.name == source.name)?;
            Some((index, label.clone()))
        });
        fixed.chain(configured).collect()
    }

    /// `metric`'s labels from requests, with the tables their values are kept in.
    pub(crate) fn dimensions(&self, metric: &MetricDef) -> Vec<Dimension> {
        self.labels_of(metric)
            .into_iter()
            .filter_map(|(source, label)| {
                let table = self.tables.get(metric.sources[source].name)?.clone();
                Some(Dimension {
                    source,
                    label,
                    table,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{HTTP_DURATION, HTTP_REQUEST_METHOD, KAFKA_CACHE_GAPS, STREAM_OPENS_SENT};

    fn attribute(name: &str, value: &str) -> Attribute {
        Attribute {
            name: name.into(),
            value: AttributeValue::parse(value).expect("value"),
        }
    }

    #[test]
    fn attribute_values() {
        assert_eq!(
            AttributeValue::parse("${http.request.method}"),
            Ok(AttributeValue::Source(&HTTP_REQUEST_METHOD))
        );
        assert_eq!(
            AttributeValue::parse("${ http.request.method }"),
            Ok(AttributeValue::Source(&HTTP_REQUEST_METHOD))
        );
        assert_eq!(
            AttributeValue::parse("eu-west"),
            Ok(AttributeValue::Literal("eu-west".into()))
        );
        assert_eq!(
            AttributeValue::parse("${http.request.verb}"),
            Err(SelectionError::UnknownSource("http.request.verb".into()))
        );
        for wrong in [
            "x-${http.request.method}",
            "${http.request.method}-x",
            "${a}${b}",
            "${a",
        ] {
            assert!(
                matches!(
                    AttributeValue::parse(wrong),
                    Err(SelectionError::Expression(_))
                ),
                "{wrong}"
            );
        }
    }

    #[test]
    fn label_names() {
        assert_eq!(label_name("service.name"), Ok("service_name".into()));
        assert_eq!(label_name("method"), Ok("method".into()));
        assert!(matches!(
            label_name("9lives"),
            Err(SelectionError::InvalidLabel(_))
        ));
        assert!(matches!(
            label_name(""),
            Err(SelectionError::InvalidLabel(_))
        ));
        assert!(matches!(
            label_name("le"),
            Err(SelectionError::ReservedLabel(_))
        ));
        assert!(matches!(
            label_name("__name__"),
            Err(SelectionError::ReservedLabel(_))
        ));
        assert!(matches!(
            label_name("binding"),
            Err(SelectionError::ReservedLabel(_))
        ));
    }

    #[test]
    fn request_labels_go_to_the_metrics_that_supply_them() {
        let selection = Selection {
            metrics: vec![&HTTP_DURATION, &STREAM_OPENS_SENT, &HTTP_DURATION],
            attributes: vec![
                attribute("method", "${http.request.method}"),
                attribute("region", "eu"),
            ],
        };
        let resolved = selection.resolve(&[]).expect("valid");
        assert_eq!(resolved.metrics.len(), 2, "duplicates are dropped");
        let labels: Vec<String> = resolved
            .dimensions(&HTTP_DURATION)
            .into_iter()
            .map(|d| d.label)
            .collect();
        assert_eq!(labels, ["method"]);
        assert!(resolved.dimensions(&STREAM_OPENS_SENT).is_empty());
        assert_eq!(
            resolved.literal_labels(),
            [("region".to_owned(), "eu".to_owned())]
        );
    }

    #[test]
    fn conflicting_or_too_many_labels_are_refused() {
        let clash = Selection {
            metrics: vec![],
            attributes: vec![attribute("a.b", "1"), attribute("a_b", "2")],
        };
        assert_eq!(
            clash.resolve(&[]).err(),
            Some(SelectionError::DuplicateLabel("a_b".into()))
        );
        let constant = [("zone".to_owned(), "z".to_owned())];
        let again = Selection {
            metrics: vec![],
            attributes: vec![attribute("zone", "y")],
        };
        assert_eq!(
            again.resolve(&constant).err(),
            Some(SelectionError::DuplicateLabel("zone".into()))
        );
        let topic = Selection {
            metrics: vec![&KAFKA_CACHE_GAPS],
            attributes: vec![attribute("topic", "fixed")],
        };
        assert_eq!(
            topic.resolve(&[]).err(),
            Some(SelectionError::DuplicateLabel("topic".into()))
        );
        let many = Selection {
            metrics: vec![&HTTP_DURATION],
            attributes: vec![
                attribute("m1", "${http.request.method}"),
                attribute("m2", "${http.request.method}"),
                attribute("p", "${http.request.path}"),
            ],
        };
        assert_eq!(
            many.resolve(&[]).err(),
            Some(SelectionError::TooManyDimensions {
                metric: "http.duration",
                count: 3
            })
        );
    }
}
