//! The figures of a run: one human table, and flat JSON.

use std::fmt::Write as _;

/// One figure's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text.
    Text(String),
    /// A count or size; `None` when it does not apply to the scenario.
    Int(Option<u64>),
    /// A rate or percentage; `None` when it does not apply.
    Float(Option<f64>),
}

/// The figures, in a fixed order.
#[derive(Debug, Default)]
pub struct Report {
    fields: Vec<(&'static str, Value)>,
}

impl Report {
    /// Sets (or replaces) a figure.
    pub fn set(&mut self, name: &'static str, value: Value) {
        match self.fields.iter_mut().find(|(n, _)| *n == name) {
            Some(field) => field.1 = value,
            None => self.fields.push((name, value)),
        }
    }

    /// Sets an integer figure.
    pub fn int(&mut self, name: &'static str, value: Option<u64>) {
        self.set(name, Value::Int(value));
    }

    /// Sets a floating-point figure.
    pub fn float(&mut self, name: &'static str, value: Option<f64>) {
        self.set(name, Value::Float(value));
    }

    /// Reads back a figure.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The human table.
    pub fn table(&self) -> String {
        let width = self.fields.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (name, value) in &self.fields {
            let shown = match value {
                Value::Text(t) => t.clone(),
                Value::Int(Some(v)) => v.to_string(),
                Value::Float(Some(v)) => format!("{v:.1}"),
                Value::Int(None) | Value::Float(None) => "-".to_string(),
            };
            let _ = writeln!(out, "{name:<width$}  {shown}");
        }
        out
    }

    /// Flat JSON, one key per figure, `null` where a figure does not apply.
    pub fn json(&self) -> String {
        let mut out = String::from("{");
        for (i, (name, value)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "\n  \"{name}\": ");
            match value {
                Value::Text(t) => quote(&mut out, t),
                Value::Int(Some(v)) => {
                    let _ = write!(out, "{v}");
                }
                Value::Float(Some(v)) if v.is_finite() => {
                    let _ = write!(out, "{:.3}", v);
                }
                Value::Int(None) | Value::Float(_) => out.push_str("null"),
            }
        }
        out.push_str("\n}\n");
        out
    }
}

fn quote(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_flat_json_and_a_table() {
        let mut r = Report::default();
        r.set("label", Value::Text("a \"b\"\n".into()));
        r.int("n", Some(3));
        r.float("cpu_percent", Some(12.345));
        r.int("lost", None);
        r.int("n", Some(4));
        assert_eq!(
            r.json(),
            "{\n  \"label\": \"a \\\"b\\\"\\u000a\",\n  \"n\": 4,\n  \"cpu_percent\": 12.345,\n  \"lost\": null\n}\n"
        );
        assert!(r.table().contains("cpu_percent  12.3\n"));
        assert!(r.table().contains("lost         -\n"));
    }
}
