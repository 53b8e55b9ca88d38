//! The repository engine benchmark: records, scenarios (run in child processes), the stream,
//! the result table and the report.

pub mod records;
pub mod report;
pub mod scenarios;
pub mod stream;
pub mod table;
