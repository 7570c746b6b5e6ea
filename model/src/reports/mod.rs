//! Reporting: the gate's reports made from the records, a failure's timeline drawn as a
//! diagram, and the fingerprint that ties the reports embedded in the docs to the code.
//!
//! - [`report`]: Markdown, JSON and JUnit reports; the kill matrix;
//! - [`timeline`]: a failure's timeline text as a Mermaid sequence diagram;
//! - [`docs`]: the sources' fingerprint and the docs' embedded sections.

pub mod docs;
pub mod report;
pub mod timeline;
