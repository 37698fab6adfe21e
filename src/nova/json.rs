//! A JSON reader with Python's `json.loads` semantics.
