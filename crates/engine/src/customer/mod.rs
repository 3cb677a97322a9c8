//! What the engine knows of one customer: the features rules read (the contract with the store)
//! and a customer's values of them. Depends on no other room.

pub mod feature;
pub mod snapshot;
