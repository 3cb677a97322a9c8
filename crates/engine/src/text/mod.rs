//! What users write, as text: the YAML reader, positions, and diagnostics. Depends on no other
//! room.

pub mod diagnostic;
pub mod location;
pub mod yaml;
