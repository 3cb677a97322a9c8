//! The staff workspace (placeholder until web-auth's foundation is merged).

pub mod customer;
pub mod customer_texts;
pub mod customers;
