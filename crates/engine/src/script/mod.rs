//! Running what users script: the Rhai sandbox, compiled expressions, the native evaluator of
//! simple ones, the script lints and the catalog of features and functions scripts see.
//! Depends on `text` and `customer`.

pub mod catalog;
pub(crate) mod expression;
pub(crate) mod growth;
pub(crate) mod lint;
pub(crate) mod native;
pub mod sandbox;
