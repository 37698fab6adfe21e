//! Python `str()` / `repr()` of JSON values, and `json.dumps` string encoding.

/// `json.dumps(s)` for a Rust string: a complete JSON string token, ASCII only.
pub fn json_string(s: &str) -> String {
    let _ = s;
    unimplemented!("json_string")
}
