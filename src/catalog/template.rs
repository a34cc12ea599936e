//! RFC 6570 level-1 URI templates (`test://template/{id}/data`): enough to route
//! `resources/read` to a template and hand its variables to the function.

use serde_json::{Map, Value};

#[derive(Debug, Clone)]
pub struct UriTemplate {
    /// Alternating literal text and variable names, starting with a literal (maybe empty).
    literals: Vec<String>,
    vars: Vec<String>,
}

impl UriTemplate {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut literals = Vec::new();
        let mut vars = Vec::new();
        let mut rest = raw;
        loop {
            match rest.find('{') {
                None => {
                    if rest.contains('}') {
                        return Err(format!("unbalanced '}}' in template {raw}"));
                    }
                    literals.push(rest.to_string());
                    break;
                }
                Some(open) => {
                    let lit = &rest[..open];
                    if lit.contains('}') {
                        return Err(format!("unbalanced '}}' in template {raw}"));
                    }
                    let close = rest[open..]
                        .find('}')
                        .ok_or_else(|| format!("unclosed '{{' in template {raw}"))?
                        + open;
                    let name = &rest[open + 1..close];
                    if name.is_empty()
                        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    {
                        return Err(format!(
                            "unsupported variable '{{{name}}}' in template {raw}"
                        ));
                    }
                    if open == 0 && !vars.is_empty() {
                        return Err(format!(
                            "two variables without a separator in template {raw}"
                        ));
                    }
                    literals.push(lit.to_string());
                    vars.push(name.to_string());
                    rest = &rest[close + 1..];
                }
            }
        }
        Ok(Self { literals, vars })
    }

    /// The variables `uri` binds, or `None` when it does not match. A variable matches one or
    /// more characters other than `/`.
    pub fn matches(&self, uri: &str) -> Option<Map<String, Value>> {
        let mut rest = uri.strip_prefix(self.literals[0].as_str())?;
        let mut out = Map::new();
        for (i, var) in self.vars.iter().enumerate() {
            let next_lit = &self.literals[i + 1];
            let end = if next_lit.is_empty() {
                if i + 1 == self.vars.len() {
                    rest.len()
                } else {
                    return None;
                }
            } else {
                rest.find(next_lit.as_str())?
            };
            let value = &rest[..end];
            if value.is_empty() || value.contains('/') {
                return None;
            }
            out.insert(var.clone(), Value::String(value.to_string()));
            rest = &rest[end + next_lit.len()..];
        }
        rest.is_empty().then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_and_captures() {
        let t = UriTemplate::parse("test://template/{id}/data").unwrap();
        assert_eq!(t.matches("test://template/123/data").unwrap()["id"], "123");
        assert!(t.matches("test://template//data").is_none());
        assert!(t.matches("test://template/1/2/data").is_none());
        assert!(t.matches("test://template/1/datax").is_none());
        let t = UriTemplate::parse("file:///{name}").unwrap();
        assert_eq!(t.matches("file:///a.txt").unwrap()["name"], "a.txt");
    }

    #[test]
    fn rejects_bad_templates() {
        assert!(UriTemplate::parse("x://{").is_err());
        assert!(UriTemplate::parse("x://{a b}").is_err());
        assert!(UriTemplate::parse("x://}").is_err());
    }
}
