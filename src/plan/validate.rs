//! (being written)
pub struct Problem;
pub enum ProblemKind {}
pub fn parse_and_validate() {}
pub fn validate() {}
pub fn waves() {}
