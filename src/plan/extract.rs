//! (being written)
pub fn extract_json() {}
pub fn extract_plan() {}
