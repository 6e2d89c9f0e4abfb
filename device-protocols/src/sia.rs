//! sia (being written)
