//! (suite to be written)
