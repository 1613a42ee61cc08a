//! Field-by-field decoding of JSON values into the config model, reproducing what upstream's
//! Go decoding does: strict objects outside steps (`json: unknown field "x"`), `null` meaning
//! "zero value", Go-style type errors, and sigs.k8s.io/yaml's coercion of scalars into string
//! fields (outside steps only: steps are custom JSON unmarshalers, where no coercion happens).

use super::yaml::{escape_pointer, LineMap};
use super::ConfigError;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Where a decoder is: JSON pointer (for lines), Go field path (for messages), and the mode.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub lines: &'a LineMap,
    /// Scalars may be coerced into string fields (sigs.k8s.io/yaml with a typed target).
    pub coerce: bool,
    /// Unknown keys are an error (`yaml.UnmarshalStrict`).
    pub strict: bool,
}

pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(crate) fn go_number_text(n: &serde_json::Number) -> String {
    if n.is_f64() {
        super::emit::go_float_g(n.as_f64().unwrap_or_default())
    } else {
        n.to_string()
    }
}

/// One JSON object being decoded into one Go struct.
pub(crate) struct Fields<'a> {
    pub ctx: Ctx<'a>,
    map: Map<String, Value>,
    pub ptr: String,
    strct: &'static str,
    field_path: String,
    seen: Vec<String>,
    folded: Vec<String>,
}

impl<'a> Fields<'a> {
    /// `null` decodes as an empty object (Go leaves the zero value).
    pub fn new(
        v: &Value,
        ctx: Ctx<'a>,
        ptr: &str,
        strct: &'static str,
        field_path: &str,
        go_type: &str,
    ) -> Result<Self, ConfigError> {
        let map = match v {
            Value::Object(m) => m.clone(),
            Value::Null => Map::new(),
            other => {
                return Err(type_error(ctx, ptr, other, strct, field_path, go_type));
            }
        };
        Ok(Fields {
            ctx,
            map,
            ptr: ptr.to_string(),
            strct,
            field_path: field_path.to_string(),
            seen: vec![],
            folded: vec![],
        })
    }

    pub fn child_ptr(&self, key: &str) -> String {
        format!("{}/{}", self.ptr, escape_pointer(key))
    }

    pub fn child_field(&self, key: &str) -> String {
        if self.field_path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{}", self.field_path, key)
        }
    }

    /// The raw value of `key` (marking it known); `None` when absent or null. Like Go's
    /// decoder, a key differing only in case also fills the field (the last one written
    /// wins), though it still counts as unknown where upstream compares keys exactly.
    pub fn raw(&mut self, key: &str) -> Option<Value> {
        self.seen.push(key.to_string());
        let mut found = self.map.get(key);
        if self.map.len() > 1 || found.is_none() {
            let lower = key.to_lowercase();
            for (k, v) in &self.map {
                if k == key {
                    found = Some(v);
                } else if k.to_lowercase() == lower {
                    self.folded.push(k.clone());
                    found = Some(v);
                }
            }
        }
        match found {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.clone()),
        }
    }

    pub fn err(&self, key: &str, v: &Value, go_type: &str) -> ConfigError {
        type_error(
            self.ctx,
            &self.child_ptr(key),
            v,
            self.strct,
            &self.child_field(key),
            go_type,
        )
    }

    pub fn string(&mut self, key: &str) -> Result<String, ConfigError> {
        match self.raw(key) {
            None => Ok(String::new()),
            Some(v) => self.to_string_field(key, &v),
        }
    }

    fn to_string_field(&self, key: &str, v: &Value) -> Result<String, ConfigError> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Bool(b) if self.ctx.coerce => Ok(b.to_string()),
            Value::Number(n) if self.ctx.coerce => Ok(go_number_text(n)),
            other => Err(self.err(key, other, "string")),
        }
    }

    pub fn bool(&mut self, key: &str) -> Result<bool, ConfigError> {
        match self.raw(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(other) => Err(self.err(key, &other, "bool")),
        }
    }

    pub fn int(&mut self, key: &str) -> Result<i64, ConfigError> {
        match self.raw(key) {
            None => Ok(0),
            Some(v) => int_value(&v).ok_or_else(|| {
                let mut e = self.err(key, &v, "int");
                if let Value::Number(n) = &v {
                    e.message =
                        e.message
                            .replacen("number", &format!("number {}", go_number_text(n)), 1);
                }
                e
            }),
        }
    }

    /// `[]string`; with coercion, scalar elements become strings.
    pub fn strings(&mut self, key: &str) -> Result<Vec<String>, ConfigError> {
        match self.raw(key) {
            None => Ok(vec![]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::Null => Ok(String::new()),
                    other => self.to_string_field(key, other),
                })
                .collect(),
            Some(other) => Err(self.err(key, &other, "[]string")),
        }
    }

    /// `map[string]string`.
    pub fn string_map(
        &mut self,
        key: &str,
        go_type: &str,
    ) -> Result<BTreeMap<String, String>, ConfigError> {
        match self.raw(key) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::Null => Ok((k.clone(), String::new())),
                    other => self.to_string_field(key, other).map(|s| (k.clone(), s)),
                })
                .collect(),
            Some(other) => Err(self.err(key, &other, go_type)),
        }
    }

    /// `map[string]interface{}` (Source, Params): `None` when absent or null.
    pub fn object(
        &mut self,
        key: &str,
        go_type: &str,
    ) -> Result<Option<Map<String, Value>>, ConfigError> {
        match self.raw(key) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(other) => Err(self.err(key, &other, go_type)),
        }
    }

    /// Keys present in the object that no decoder asked for, sorted.
    pub fn unknown(&self) -> Map<String, Value> {
        self.map
            .iter()
            .filter(|(k, _)| !self.seen.iter().any(|s| s == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Ends decoding; in strict mode any unknown key is an error (a key matching a field
    /// but for case is known to Go's decoder).
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.ctx.strict {
            let unknown = self.unknown();
            if let Some(k) = unknown.keys().find(|k| !self.folded.contains(k)) {
                return Err(ConfigError {
                    message: format!("json: unknown field {k:?}"),
                    line: self.ctx.lines.line(&self.child_ptr(k)),
                });
            }
        }
        Ok(())
    }
}

pub(crate) fn int_value(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64)
        }),
        _ => None,
    }
}

pub(crate) fn type_error(
    ctx: Ctx,
    ptr: &str,
    v: &Value,
    strct: &str,
    field_path: &str,
    go_type: &str,
) -> ConfigError {
    let message = if field_path.is_empty() {
        format!(
            "json: cannot unmarshal {} into Go value of type {}",
            json_type(v),
            go_type
        )
    } else {
        format!(
            "json: cannot unmarshal {} into Go struct field {}.{} of type {}",
            json_type(v),
            strct,
            field_path,
            go_type
        )
    };
    ConfigError {
        message,
        line: ctx.lines.line(ptr),
    }
}

/// Decodes a JSON array field element by element.
pub(crate) fn list<T>(
    v: Option<Value>,
    f: &Fields,
    key: &str,
    go_type: &str,
    mut each: impl FnMut(&Value, String) -> Result<T, ConfigError>,
) -> Result<Vec<T>, ConfigError> {
    match v {
        None => Ok(vec![]),
        Some(Value::Array(items)) => {
            let base = f.child_ptr(key);
            items
                .iter()
                .enumerate()
                .map(|(i, item)| each(item, format!("{base}/{i}")))
                .collect()
        }
        Some(other) => Err(f.err(key, &other, go_type)),
    }
}

/// Go's `json.Marshal` of a `map[string]interface{}` sorts keys at every level.
pub(crate) fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Builds a JSON object in Go struct-field order with `omitempty` rules.
#[derive(Default)]
pub(crate) struct Out(pub Map<String, Value>);

impl Out {
    pub fn put(&mut self, k: &str, v: Value) -> &mut Self {
        self.0.insert(k.to_string(), v);
        self
    }
    pub fn str(&mut self, k: &str, s: &str) -> &mut Self {
        if !s.is_empty() {
            self.put(k, Value::String(s.to_string()));
        }
        self
    }
    pub fn bool(&mut self, k: &str, b: bool) -> &mut Self {
        if b {
            self.put(k, Value::Bool(true));
        }
        self
    }
    pub fn int(&mut self, k: &str, i: i64) -> &mut Self {
        if i != 0 {
            self.put(k, Value::from(i));
        }
        self
    }
    pub fn strings(&mut self, k: &str, v: &[String]) -> &mut Self {
        if !v.is_empty() {
            self.put(k, Value::from(v.to_vec()));
        }
        self
    }
    pub fn map(&mut self, k: &str, m: &Map<String, Value>) -> &mut Self {
        if !m.is_empty() {
            self.put(k, sorted(&Value::Object(m.clone())));
        }
        self
    }
    pub fn string_map(&mut self, k: &str, m: &BTreeMap<String, String>) -> &mut Self {
        if !m.is_empty() {
            self.put(
                k,
                Value::Object(
                    m.iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect(),
                ),
            );
        }
        self
    }
    pub fn value(self) -> Value {
        Value::Object(self.0)
    }
}
