//! Import: record kinds and their fields, mappings from source rows to typed records, the
//! functions mapping scripts may call and the conversions of cells. Depends on `text` and
//! `script`.

pub(crate) mod convert;
pub mod mapping;
pub mod mapping_functions;
pub mod record;
