//! Filters that turn a value into a literal of the output language. Templates never rely on
//! auto-escaping: every value a template prints goes through the filter of its language.

/// A quoted HCL string whose value is exactly `value`: besides the usual backslash escapes,
/// `${` and `%{` would start a template interpolation or directive, and are doubled.
pub fn hcl_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A double-quoted YAML scalar. JSON string syntax is a subset of YAML's double-quoted
/// scalars, so serde_json's encoding is a correct YAML escape: the value can never turn into
/// a number, a boolean, `null`, an alias or a flow collection.
pub fn yaml_string(value: &str) -> String {
    serde_json::Value::from(value).to_string()
}

/// A JSON string literal (also a valid YAML double-quoted scalar).
pub fn json_string(value: &str) -> String {
    serde_json::Value::from(value).to_string()
}

/// A single-quoted Groovy string, which Groovy never interpolates: only `\` and `'` need
/// escaping (and line breaks, which a single-quoted string cannot hold).
pub fn groovy_single_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hcl_escapes_interpolation_and_quotes() {
        assert_eq!(hcl_string("plain"), r#""plain""#);
        assert_eq!(hcl_string("a${b}c"), r#""a$${b}c""#);
        assert_eq!(hcl_string("a%{b}c"), r#""a%%{b}c""#);
        assert_eq!(hcl_string("$x %y {z}"), r#""$x %y {z}""#);
        assert_eq!(hcl_string(r#"q"b\"#), r#""q\"b\\""#);
        assert_eq!(hcl_string("l1\nl2\u{1}"), r#""l1\nl2\u0001""#);
        assert_eq!(hcl_string("$${"), r#""$$${""#);
    }

    #[test]
    fn yaml_is_a_json_string() {
        assert_eq!(yaml_string("payments"), r#""payments""#);
        assert_eq!(yaml_string("yes"), r#""yes""#);
        assert_eq!(yaml_string("a\"b\\c\n"), r#""a\"b\\c\n""#);
    }

    #[test]
    fn groovy_single_quotes_escape_only_what_they_must() {
        assert_eq!(groovy_single_quoted("a${b}"), "'a${b}'");
        assert_eq!(groovy_single_quoted(r"it's\"), r"'it\'s\\'");
        assert_eq!(groovy_single_quoted("a\nb"), r"'a\nb'");
    }
}
