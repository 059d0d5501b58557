//! Typing of plain scalars with the YAML 1.2 core schema.

/// How a plain scalar reads under the YAML 1.2 core schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Plain {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str,
}

/// Types a plain scalar's text (YAML 1.2 core schema).
pub(crate) fn resolve_plain(text: &str) -> Plain {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Plain::Null,
        "true" | "True" | "TRUE" => return Plain::Bool(true),
        "false" | "False" | "FALSE" => return Plain::Bool(false),
        ".nan" | ".NaN" | ".NAN" => return Plain::Float(f64::NAN),
        _ => {}
    }
    let (negative, digits) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if matches!(digits, ".inf" | ".Inf" | ".INF") {
        return Plain::Float(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if digits.len() == text.len() {
        let radix = |prefix: &str, radix: u32| {
            let body = text.strip_prefix(prefix)?;
            let ok = !body.is_empty() && body.chars().all(|c| c.is_digit(radix));
            ok.then(|| {
                u128::from_str_radix(body, radix)
                    .ok()
                    .and_then(|v| i128::try_from(v).ok())
            })
        };
        if let Some(int) = radix("0x", 16).or_else(|| radix("0o", 8)) {
            return int.map_or(Plain::Str, Plain::Int);
        }
    }
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i128>().map_or(Plain::Str, Plain::Int);
    }
    if is_float(digits) {
        return text.parse::<f64>().map_or(Plain::Str, Plain::Float);
    }
    Plain::Str
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_float(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut i = digits(0);
    let int_digits = i;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        frac_digits = digits(i + 1);
        i += 1 + frac_digits;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp = digits(i);
        if exp == 0 {
            return false;
        }
        i += exp;
    }
    i == b.len()
}
