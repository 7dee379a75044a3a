//! troop (work in progress).
pub mod input;
