//! Input records and the command template (being written).
